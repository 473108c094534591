"""SIGTERM and SIGINT during training: a resumable checkpoint, the outcome "interrupted", exit status
128 + signal number; a relaunch resumes to the result of an uninterrupted run, its wall time and metrics
log covering both segments. The run sends itself the signal after a given step (tests/interrupts.py)."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lra_snn.config import PROJECT_ROOT
from lra_snn.training.cell import run

CELL = (
    "data=listops",
    "model=s4d",
    "profile=tiny",
    "trainer.max_epochs=3",
    "trainer.deterministic=true",
    "torch_threads=1",
)  # 8 steps an epoch, 24 in all
COMPARED = ("val/acc", "val/loss", "test/acc", "test/loss")


def launch(root: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "lra_snn.train",
        *CELL,
        f"paths.data_dir={data}",
        f"paths.output_dir={root}/outputs",
        f"paths.results_dir={root}/results",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        *extra,
    ]
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)


def signal_at(step: int, name: str) -> list[str]:
    return [
        "+callbacks.signal._target_=tests.interrupts.SignalAtStep",
        f"+callbacks.signal.step={step}",
        f"+callbacks.signal.signal_name={name}",
    ]


def only(root: Path, pattern: str) -> Path:
    (path,) = root.rglob(pattern)
    return path


def metric_rows(path: Path, interrupted_epoch: str) -> list[dict[str, str]]:
    """The metrics log without the row of epoch means of ``interrupted_epoch``: Lightning does not checkpoint
    their running sums, so the means of an epoch interrupted in its middle cover the batches after the resume."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row for row in rows if not (row["epoch"] == interrupted_epoch and row.get("train/loss_epoch"))]


@pytest.mark.slow
def test_sigterm_checkpoints_exits_143_and_the_relaunch_matches_an_uninterrupted_run(compose_train, tmp_path):
    straight = run(
        compose_train(
            *CELL, f"paths.output_dir={tmp_path}/straight/outputs", f"paths.results_dir={tmp_path}/straight/results"
        )
    )
    root = tmp_path / "stopped"
    stopped = launch(root, tmp_path / "data", *signal_at(13, "SIGTERM"))
    assert stopped.returncode == 128 + signal.SIGTERM == 143, stopped.stderr[-3000:]
    result_file, last = only(root, "result.json"), only(root, "last.ckpt")
    interrupted = json.loads(result_file.read_text())
    assert interrupted["status"] == "interrupted" and interrupted["steps"] == 13
    assert (
        f"stopped by SIGTERM at global step 13 in cell {interrupted['config']['paths']['cell']}"
        in interrupted["message"]
    )
    assert f"{last} saved at global step 13" in interrupted["message"]
    assert torch.load(last, weights_only=False)["global_step"] == 13  # inside the second epoch

    relaunch = launch(root, tmp_path / "data")
    assert relaunch.returncode == 0, relaunch.stderr[-3000:]
    assert f"resuming from {last}" in relaunch.stdout + relaunch.stderr
    resumed = json.loads(result_file.read_text())
    assert resumed["status"] == "completed" and resumed["steps"] == straight["steps"] == 24
    for key in COMPARED:
        assert resumed["metrics"][key] == straight["metrics"][key], key
    # wall time and metrics log cover both segments
    assert [(s["first_step"], s["last_step"]) for s in resumed["segments"]] == [(0, 13), (13, 24)]
    assert resumed["wall_time_s"] == pytest.approx(sum(s["wall_time_s"] for s in resumed["segments"]))
    first, at_stop = resumed["segments"][0], interrupted["segments"][0]
    assert first["started_at"] == at_stop["started_at"] and 0 < first["wall_time_s"] <= at_stop["wall_time_s"]
    # the CSV logger's step log under outputs/ (the curves beside result.json are checked in test_curves.py)
    log, straight_log = only(root / "outputs", "metrics.csv"), only(tmp_path / "straight" / "outputs", "metrics.csv")
    assert metric_rows(log, "1") == metric_rows(straight_log, "1")
    # the interrupted record is kept beside the completed one
    (attempt,) = (result_file.parent / "attempts").glob("*-interrupted.json")
    assert json.loads(attempt.read_text())["message"] == interrupted["message"]


@pytest.mark.slow
def test_sigint_exits_130_as_interrupted_without_a_checkpoint_before_pending_validation(tmp_path):
    # step 8 ends the first epoch: validation is due, and Lightning stops before it; a checkpoint taken
    # there would make a resumed run skip that validation, so none is written and the cell starts over
    stopped = launch(tmp_path, tmp_path / "data", *signal_at(8, "SIGINT"))
    assert stopped.returncode == 128 + signal.SIGINT == 130, stopped.stderr[-3000:]
    result = json.loads(only(tmp_path, "result.json").read_text())
    assert result["status"] == "interrupted" and result["steps"] == 8
    assert "stopped by SIGINT at global step 8" in result["message"]
    assert "no checkpoint was written yet, so it starts over" in result["message"]
    assert not list(tmp_path.rglob("last.ckpt"))


def test_ctrl_c_while_the_data_is_prepared_stops_the_cell_with_nothing_recorded(compose_train, monkeypatch):
    from lra_snn.data import store
    from lra_snn.training.cell import RunInterrupted

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    cfg = compose_train("data=listops", "model=s4d", "profile=tiny")
    monkeypatch.setattr(store, "ensure", interrupted)
    with pytest.raises(RunInterrupted, match=r"while the data of cell .* was prepared, before any training") as stop:
        run(cfg)
    assert stop.value.signum == signal.SIGINT and "launch the cell again" in str(stop.value)
    assert not Path(cfg.paths.result_file).exists()
    monkeypatch.undo()  # the advice: launching again prepares the data and trains
    assert run(cfg)["status"] == "completed"
