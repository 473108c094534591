"""Each multirun writes its multirun.yaml, sweep progress and job logs into a folder of its own, so two
sweeps started at once (even in the same second) do not overwrite each other's files."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from lra_snn.config import CONF_DIR, PROJECT_ROOT, compose_train, register_with_hydra
from lra_snn.training.sweep_progress import STATE_FILE

SWEEP_NAME = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


def sweep_dir(*overrides: str):
    register_with_hydra()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    return cfg, cfg.hydra.sweep.dir


def test_every_composed_sweep_gets_its_own_folder_and_keeps_it(tmp_path):
    first, folder = sweep_dir(f"paths.output_dir={tmp_path}")
    _, other = sweep_dir(f"paths.output_dir={tmp_path}")
    assert folder != other  # composed within the same second: the random suffix tells them apart
    for name in (folder, other):
        assert Path(name).parent == tmp_path / "sweeps" and SWEEP_NAME.fullmatch(Path(name).name), name
    # every later read, and the copy each job of the sweep gets (pickled to a joblib / SLURM worker), agree
    assert first.hydra.sweep.dir == folder
    assert pickle.loads(pickle.dumps(first)).hydra.sweep.dir == folder


@pytest.mark.slow  # two Python processes import torch and Lightning: ~25 s on a busy core
def test_two_sweeps_started_together_write_to_different_folders(tmp_path):
    # cells whose result file cannot be read are refused before any training, and the sweep goes on:
    # the sweep machinery runs without training anything
    common = ["profile=tiny", f"paths.data_dir={tmp_path}/data", f"paths.output_dir={tmp_path}/outputs"]
    sweeps = {"results_a": "1,2", "results_b": "3"}
    for results, seeds in sweeps.items():
        for seed in seeds.split(","):
            cell = compose_train([*common, f"paths.results_dir={tmp_path}/{results}", f"seed={seed}"])
            Path(cell.paths.result_file).parent.mkdir(parents=True)
            Path(cell.paths.result_file).write_text("{ not json")
    command = [sys.executable, "-m", "lra_snn.train", "-m", *common, "torch_threads=1"]
    runs = [
        subprocess.Popen(
            [*command, f"paths.results_dir={tmp_path}/{results}", f"seed={seeds}"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        for results, seeds in sweeps.items()
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert all("the sweep goes on" in output for output in outputs), outputs

    folders = sorted((tmp_path / "outputs" / "sweeps").iterdir())
    assert len(folders) == 2 and all(SWEEP_NAME.fullmatch(f.name) for f in folders), folders
    totals = sorted(json.loads((folder / STATE_FILE).read_text())["total"] for folder in folders)
    assert totals == [1, 2]  # each folder holds its own sweep's progress file ...
    swept = sorted(len(list(folder.rglob("seed_*/.hydra"))) for folder in folders)
    assert swept == [1, 2]  # ... and its own jobs' configs
    assert all((folder / "multirun.yaml").is_file() for folder in folders)
