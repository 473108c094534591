"""Launchers as config: a 2-job multirun through hydra-joblib-launcher on the CPU; the SLURM
launcher config composed, rendered to an sbatch script by submitit, and run through submitit's
local executor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lra_snn.config import PROJECT_ROOT, register_with_hydra

pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="needs pip install -e .[launchers]")
submitit = pytest.importorskip("submitit", reason="needs pip install -e .[launchers]")
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf  # noqa: E402

TINY = ["data=listops", "model=s4d", "profile=tiny", "torch_threads=1"]


def multirun(overrides: list[str]) -> subprocess.CompletedProcess:
    """``python -m lra_snn.train -m <overrides>`` from the project root; fails the test on a non-zero exit."""
    command = [sys.executable, "-m", "lra_snn.train", "-m", *overrides]
    done = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def completed_seeds(results: Path) -> list[int]:
    """The seeds of the result files under ``results``, all of which must be completed."""
    records = [json.loads(p.read_text()) for p in sorted(results.rglob("result.json"))]
    assert all(r["status"] == "completed" for r in records), [r.get("message") for r in records]
    return [r["seed"] for r in records]


def compose_launcher(name: str, *overrides: str):
    """The train config with ``hydra/launcher=<name>``, including the ``hydra`` node."""
    register_with_hydra()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[f"hydra/launcher={name}", *overrides], return_hydra_config=True)


@pytest.mark.slow  # three Python processes import torch and Lightning: ~40 s on a busy core
def test_joblib_runs_a_two_job_multirun_in_parallel_processes(tmp_path, train_overrides):
    done = multirun(["hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "seed=1,2", *TINY, *train_overrides])
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr
    assert "validated against ConfigStore schema" not in done.stderr  # Hydra's schema-matching deprecation
    assert completed_seeds(tmp_path / "results") == [1, 2]


def test_slurm_config_composes_and_renders_an_sbatch_array(tmp_path, monkeypatch):
    cfg = compose_launcher(
        "slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.array_parallelism=3",
        "hydra.launcher.timeout_min=90",
        "hydra.launcher.gpus_per_node=2",
        "hydra.launcher.tasks_per_node=2",
    )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert launcher["submitit_folder"] == "${hydra.sweep.dir}/.submitit/%j"
    for key in ("partition", "gpus_per_node", "timeout_min", "array_parallelism", "cpus_per_task", "mem_gb"):
        assert key in launcher, key

    # the plugin's own split of its parameters into executor arguments, for a 2-job sweep
    params = {k: v for k, v in launcher.items() if k not in ("_target_", "submitit_folder", "name")}
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit only checks that srun exists
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")
    executor = submitit.AutoExecutor(
        cluster="slurm", folder=tmp_path / "submitit", slurm_max_num_timeout=params.pop("max_num_timeout")
    )
    executor.update_parameters(name="train", **{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    from submitit.slurm.slurm import _make_sbatch_string

    script = _make_sbatch_string(
        command="python -m lra_snn.train", folder=tmp_path / "submitit", map_count=2, **executor._executor.parameters
    )
    for line in (
        "--partition=gpu",
        "--gpus-per-node=2",
        "--ntasks-per-node=2",
        "--time=90",
        "--array=0-1%2",
        f"--cpus-per-task={launcher['cpus_per_task']}",
        f"--mem={launcher['mem_gb']}GB",
    ):
        assert f"#SBATCH {line}\n" in script, line


def test_slurm_example_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(PROJECT_ROOT / "scripts" / "slurm_example.sh")], check=True)


@pytest.mark.slow  # two submitit job processes: ~45 s on a busy core
def test_slurm_queue_settings_run_through_submitits_local_executor(tmp_path, train_overrides):
    slurm = compose_launcher("slurm").hydra.launcher
    shared = {key: slurm[key] for key in ("timeout_min", "tasks_per_node", "nodes", "stderr_to_stdout")}
    queue = [f"hydra.launcher.{key}={value}" for key, value in shared.items()]
    multirun(
        [
            "hydra/launcher=submitit_local",
            *queue,
            "hydra.launcher.gpus_per_node=0",
            "hydra.launcher.cpus_per_task=1",
            "seed=1,2",
            *TINY,
            *train_overrides,
        ]
    )
    assert completed_seeds(tmp_path / "results") == [1, 2]
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()  # the sweep's own folder holds submitit's files
    job_logs = list((sweep / ".submitit").rglob("*_log.out"))
    assert len(job_logs) == 2
