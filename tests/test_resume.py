"""A sweep killed mid-cell (SIGTERM, then SIGKILL) and relaunched ends with the same results as an
uninterrupted sweep: completed cells are not rerun, the interrupted cell resumes from last.ckpt.
A run that dies inside an epoch resumes from its step checkpoint with the rest of that epoch's batches."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lra_snn.config import PROJECT_ROOT
from lra_snn.training.cell import RunFailed, run

SWEEP = [
    sys.executable,
    "-m",
    "lra_snn.train",
    "-m",
    "data=listops",
    "model=s4d",
    "seed=1,2",
    "profile=tiny",
    "trainer.max_epochs=8",
    "trainer.deterministic=true",
    "torch_threads=1",
    "trainer.enable_progress_bar=false",
]
COMPARED = ("val/acc", "val/loss", "test/acc", "test/loss")


def sweep_command(data: Path, root: Path) -> list[str]:
    return [*SWEEP, f"paths.data_dir={data}", f"paths.output_dir={root}/outputs", f"paths.results_dir={root}/results"]


def results(root: Path) -> dict[int, dict]:
    records = [json.loads(path.read_text()) for path in (root / "results").rglob("result.json")]
    return {record["seed"]: record for record in records}


def interrupt_during_second_cell(command: list[str], root: Path) -> None:
    """Start the sweep; once seed 1 is done and seed 2 has written last.ckpt, SIGTERM then SIGKILL it."""
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not (
        list((root / "results").rglob("seed_1/result.json"))
        and list((root / "outputs").rglob("seed_2/checkpoints/last.ckpt"))
    ):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the sweep ended (or stalled) before it could be interrupted inside the second cell")
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.slow
def test_killed_and_relaunched_sweep_matches_an_uninterrupted_one(tmp_path):
    data = tmp_path / "data"
    subprocess.run(
        sweep_command(data, tmp_path / "straight"), cwd=PROJECT_ROOT, check=True, capture_output=True, timeout=600
    )
    straight = results(tmp_path / "straight")

    root = tmp_path / "killed"
    interrupt_during_second_cell(sweep_command(data, root), root)
    interrupted = results(root)
    assert interrupted[1]["status"] == "completed"
    assert interrupted.get(2, {}).get("status") in (None, "interrupted"), "the second cell completed before the kill"
    first_finished = interrupted[1]["finished_at"]

    relaunch = subprocess.run(
        sweep_command(data, root), cwd=PROJECT_ROOT, check=True, capture_output=True, text=True, timeout=600
    )
    resumed = results(root)
    assert resumed[1]["finished_at"] == first_finished, "a completed cell was run again"
    assert "resuming from" in relaunch.stdout + relaunch.stderr
    for seed in (1, 2):
        assert resumed[seed]["status"] == "completed"
        assert resumed[seed]["steps"] == straight[seed]["steps"]
        for key in COMPARED:
            assert resumed[seed]["metrics"][key] == straight[seed]["metrics"][key], (seed, key)


def logged_batches(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_killed_inside_an_epoch_resumes_with_the_rest_of_its_batches(compose_train, tmp_path, caplog):
    # tiny ListOps: 256 examples in batches of 32, 8 steps an epoch; a step checkpoint every 3 steps
    def cell(name: str, *extra: str):
        return compose_train(
            "data=listops",
            "model=s4d",
            "profile=tiny",
            "trainer.max_epochs=3",
            "trainer.deterministic=true",
            "callbacks.step_checkpoint.every_n_train_steps=3",
            "+callbacks.batches._target_=tests.fakes.BatchLabels",
            f"+callbacks.batches.path={tmp_path}/{name}.jsonl",
            f"paths.output_dir={tmp_path}/{name}",
            f"paths.results_dir={tmp_path}/{name}_results",
            *extra,
        )

    expected = run(cell("straight"))
    with pytest.raises(RunFailed, match="crash injected after step 13"):
        run(cell("killed", "+callbacks.crash._target_=tests.fakes.CrashAtStep", "+callbacks.crash.step=13"))
    last = next((tmp_path / "killed").rglob("last.ckpt"))
    assert torch.load(last, weights_only=False)["global_step"] == 12  # inside the second epoch (steps 9-16)
    before_crash = logged_batches(tmp_path / "killed.jsonl")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lra_snn.training.progress"):
        resumed = run(cell("killed"))
    epoch_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert "(mean of the 4 batches since the resume, of 8)" in epoch_lines[0]  # steps 13-16 of 9-16
    assert [line for line in epoch_lines[1:] if "since the resume" in line] == []
    after_restart = logged_batches(tmp_path / "killed.jsonl")[len(before_crash) :]
    # the steps after the checkpoint are trained again, on the same batches, and the epoch ends where it should
    # (without ResumeMidEpoch the second epoch would start its data over: this comparison fails)
    assert [b for b in before_crash if b["step"] <= 12] + after_restart == logged_batches(tmp_path / "straight.jsonl")
    assert resumed["status"] == "completed" and resumed["steps"] == expected["steps"] == 24
    for key in COMPARED:
        assert resumed["metrics"][key] == expected["metrics"][key], key
