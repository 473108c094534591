"""The per-run metrics file (``metrics.csv`` beside ``result.json``): written by a training run,
read back, kept across a resume and not replaced by the rows of a checkpoint evaluated after training."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from lra_snn.results.curves import (
    METRICS_FILENAME,
    MetricsFileError,
    Row,
    format_rows,
    metrics_path,
    read_metrics_file,
)
from lra_snn.training.cell import RunFailed, run
from lra_snn.training.metrics_table import MetricsTable


def test_a_completed_run_writes_its_curves_beside_the_result(compose_train, tmp_path):
    cfg = compose_train("data=listops", "model=s4d", "profile=tiny", "trainer.max_epochs=3")
    assert run(cfg)["status"] == "completed"
    result_path = Path(cfg.paths.result_file)
    result = json.loads(result_path.read_text())
    assert result["metrics_file"] == METRICS_FILENAME
    path = metrics_path(result_path, result["metrics_file"])
    text = path.read_text()
    assert str(tmp_path) not in text  # no absolute path: the file reads the same from any clone
    rows = read_metrics_file(path)
    val = [row for row in rows if row.stage == "val"]
    assert [row.epoch for row in val] == [1.0, 2.0, 3.0]
    assert [row.step for row in val] == sorted(row.step for row in val) and val[0].step > 0
    assert all(
        row.stage == "train" and "loss" in row.values for row in rows if row.stage not in ("val", "final_val", "test")
    )
    (final,) = [row for row in rows if row.stage == "final_val"]
    (test,) = [row for row in rows if row.stage == "test"]
    # the re-validation sits on the pass of the checkpoint it re-measures, never after the last epoch
    (same,) = [row for row in val if row.step == final.step]
    assert final.epoch == same.epoch <= val[-1].epoch
    assert final.values["acc"] == pytest.approx(result["metrics"]["val/acc"])
    assert (test.epoch, test.step) == (final.epoch, final.step)
    assert test.values["acc"] == pytest.approx(result["metrics"]["test/acc"])


def test_rows_round_trip_and_empty_columns_are_left_out(tmp_path):
    rows = [
        Row("train", 0.5, 2, {"loss": 2.25}),
        Row("val", 1.0, 4, {"loss": 2.0, "acc": 0.375}),
        Row("test", 1.0, 4, {"loss": 2.125, "acc": 0.25}),
    ]
    text = format_rows(rows)
    assert text.splitlines()[0] == "stage,epoch,step,loss,acc"
    path = tmp_path / METRICS_FILENAME
    path.write_text(text)
    assert read_metrics_file(path) == rows


@pytest.mark.parametrize(
    ("text", "fault"),
    [("epoch,step,loss\n1,2,3\n", "no column stage"), ("stage,epoch,step\nwarmup,1,2\n", "line 2: stage 'warmup'")],
)
def test_a_malformed_metrics_file_is_named_with_its_fault(tmp_path, text, fault):
    path = tmp_path / METRICS_FILENAME
    path.write_text(text)
    with pytest.raises(MetricsFileError, match=fault):
        read_metrics_file(path)


def test_metrics_file_must_be_a_name_beside_the_result(tmp_path):
    result = tmp_path / "seed_1" / "result.json"
    assert metrics_path(result, "metrics.csv") == tmp_path / "seed_1" / "metrics.csv"
    with pytest.raises(MetricsFileError, match="names no metrics_file"):
        metrics_path(result, None)
    for bad in ("/abs/metrics.csv", "../metrics.csv", "logs/metrics.csv", ".."):
        with pytest.raises(MetricsFileError, match="expected a file name"):
            metrics_path(result, bad)


def test_rows_come_back_on_resume_but_not_when_a_checkpoint_is_evaluated():
    saved = MetricsTable()
    saved.rows = [Row("val", 1.0, 4, {"acc": 0.5})]
    checkpoint: dict = {}
    saved.on_save_checkpoint(None, None, checkpoint)  # type: ignore[arg-type]

    resumed = MetricsTable()
    resumed.on_load_checkpoint(SimpleNamespace(state=SimpleNamespace(fn="fit")), None, checkpoint)  # type: ignore[arg-type]
    assert resumed.rows == saved.rows

    evaluated = MetricsTable()
    evaluated.rows = [Row("val", 1.0, 4, {"acc": 0.5}), Row("val", 2.0, 8, {"acc": 0.25})]
    evaluated.on_load_checkpoint(SimpleNamespace(state=SimpleNamespace(fn="validate")), None, checkpoint)  # type: ignore[arg-type]
    assert len(evaluated.rows) == 2


def test_a_run_killed_inside_an_epoch_writes_the_same_curves_as_a_straight_one(compose_train, tmp_path):
    # tiny ListOps: 8 steps an epoch, a step checkpoint every 3 steps, a crash after step 13 (resumed from 12)
    def cell(name: str, *extra: str):
        return compose_train(
            "data=listops",
            "model=s4d",
            "profile=tiny",
            "trainer.max_epochs=3",
            "trainer.deterministic=true",
            "callbacks.step_checkpoint.every_n_train_steps=3",
            f"paths.output_dir={tmp_path}/{name}",
            f"paths.results_dir={tmp_path}/{name}_results",
            *extra,
        )

    def curves(name: str) -> list[Row]:
        (result,) = (tmp_path / f"{name}_results").rglob("result.json")
        return read_metrics_file(result.parent / METRICS_FILENAME)

    run(cell("straight"))
    with pytest.raises(RunFailed, match="crash injected after step 13"):
        run(cell("killed", "+callbacks.crash._target_=tests.fakes.CrashAtStep", "+callbacks.crash.step=13"))
    assert run(cell("killed"))["status"] == "completed"
    straight = curves("straight")
    assert [(r.stage, r.epoch, r.step) for r in curves("killed")] == [(r.stage, r.epoch, r.step) for r in straight]
    assert [r.values for r in curves("killed")] == [pytest.approx(r.values) for r in straight]
    assert [r.step for r in straight if r.stage == "train"] == list(range(1, 25))  # every step once, in order


def test_a_named_but_missing_metrics_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(MetricsFileError, match=f"{tmp_path}/metrics.csv: cannot be read"):
        read_metrics_file(tmp_path / METRICS_FILENAME)
