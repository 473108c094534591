"""Sweeps that say what they do: every log line names its cell, the time left counts the cells that run at
once, completed cells are left out before any worker starts, and the sweep ends with a table of its cells."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from lra_snn.config import PROJECT_ROOT
from lra_snn.training.sweep_progress import (
    OUTCOMES_FILE,
    CellOutcome,
    append_outcome,
    cell_outcome,
    minutes,
    progress_line,
    read_outcomes,
)
from lra_snn.training.sweeper import parallel_cells, summary_table


def test_minutes_keep_a_sensible_precision():
    assert [minutes(s) for s in (0.36, 9.94, 10.0, 42.4, 119.0, 120.0, 192.0)] == [
        "0.4 s",
        "9.9 s",
        "10 s",
        "42 s",
        "119 s",
        "2.0 min",
        "3.2 min",
    ]


def test_progress_line_counts_the_cells_that_run_at_once():
    first = progress_line(2, 6, [], 3.0, 2)
    assert first == "sweep: cell 2 of 6 started; 0 done, 3.0 s elapsed, time left estimated once a cell finishes"
    # two cells done in 120 s each; four left, two at a time: 240 s
    assert progress_line(3, 6, [120.0, 120.0], 240.0, 2).endswith("2 done, 4.0 min elapsed, ~4.0 min left")
    assert progress_line(3, 6, [120.0, 120.0], 240.0, 1).endswith("~8.0 min left")
    # never more at once than cells left: one left, 4 workers -> its own time
    assert progress_line(6, 6, [60.0] * 5, 300.0, 4).endswith("~60 s left")


def test_parallel_cells_reads_the_launcher():
    cpus = os.cpu_count() or 1
    assert parallel_cells(OmegaConf.create({"n_jobs": 2}), 10) == 2
    assert parallel_cells(OmegaConf.create({"n_jobs": 2}), 1) == 1
    assert parallel_cells(OmegaConf.create({"n_jobs": -1}), 1000) == cpus
    assert parallel_cells(OmegaConf.create({"n_jobs": -2}), 1000) == max(1, cpus - 1)
    assert parallel_cells(OmegaConf.create({"array_parallelism": 16}), 5) == 5
    assert parallel_cells(OmegaConf.create({"_target_": "basic"}), 5) == 1
    assert parallel_cells(OmegaConf.create({"n_jobs": 0}), 5) == 1  # joblib refuses 0: one at a time here


def test_parallel_cells_without_a_known_cpu_count(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: None)
    assert parallel_cells(OmegaConf.create({"n_jobs": -1}), 8) == 1


def test_outcomes_are_appended_one_line_each_and_read_back(tmp_path):
    outcomes = [
        CellOutcome("mini/listops s4d seed 1", "completed", "test/acc", 0.4567, 75.0),
        CellOutcome("mini/listops prf seed 1", "failed", "test/acc", None, 12.0, "RuntimeError in cell: nan"),
    ]
    for outcome in outcomes:
        append_outcome(tmp_path, outcome)
    with open(tmp_path / OUTCOMES_FILE, "a") as cut_short:  # a job killed while writing
        cut_short.write('{"label": "mini/listops\n')
    later = CellOutcome("mini/text s4d seed 1", "completed", "test/acc", 0.6, 80.0)
    append_outcome(tmp_path, later)  # a cell that ended after it
    assert read_outcomes(tmp_path) == [*outcomes, later]
    assert (tmp_path / OUTCOMES_FILE).stat().st_mode & 0o777 == 0o644
    assert read_outcomes(tmp_path / "elsewhere") == []


def test_summary_table_names_every_cell_with_status_metric_and_time():
    table = summary_table(
        [
            CellOutcome("mini/listops s4d seed 1", "done before", "test/acc", 0.511, 300.0, "results/x/result.json"),
            CellOutcome("mini/listops prf seed 1", "completed", "test/acc", 0.4567, 75.0),
            CellOutcome("mini/wikitext103 s4d seed 1", "completed", "test/ppl", 123.456, 5.0),
            CellOutcome("mini/pathx psn_ssm seed 1", "failed", "test/acc", None, 2.5, "ValueError | T too long"),
            CellOutcome("mini/listops dsn_ssm seed 1", "refused", "test/acc", None, 0.2, "data.n_train=-5: expected"),
            CellOutcome("mini/text prf seed 1", "done before", "test/acc", None, None, "two\nlines " + "x" * 200),
        ],
        412.0,
    )
    assert table.splitlines()[:4] == [
        "sweep summary: 6 cells (2 done before, 2 completed, 1 failed, 1 refused), 6.9 min",
        "",
        "| cell | status | metric | time | note |",
        "|---|---|---:|---:|---|",
    ]
    assert table.splitlines()[4:] == [
        "| mini/listops s4d seed 1 | done before | test/acc 51.10 % | 5.0 min | results/x/result.json |",
        "| mini/listops prf seed 1 | completed | test/acc 45.67 % | 75 s |  |",
        "| mini/wikitext103 s4d seed 1 | completed | test/ppl 123.5 | 5.0 s |  |",
        "| mini/pathx psn_ssm seed 1 | failed | - | 2.5 s | ValueError / T too long |",
        "| mini/listops dsn_ssm seed 1 | refused | - | 0.2 s | data.n_train=-5: expected |",
        f"| mini/text prf seed 1 | done before | - | - | {('two lines ' + 'x' * 200)[:120]} |",
    ]


def test_a_job_that_raised_reads_refused_with_its_error(tmp_path):
    config = OmegaConf.create(
        {
            "profile_name": "tiny",
            "task_name": "listops",
            "model": {"name": "s4d"},
            "seed": 3,
            "paths": {"result_file": str(tmp_path / "result.json")},
        }
    )
    job = JobReturn()
    job.status = JobStatus.FAILED
    job._return_value = ValueError("1 invalid config value:\n  trainer.max_epochs=0: expected an integer >= 1")
    outcome = cell_outcome(config, job, started=0.0)
    assert (outcome.label, outcome.status, outcome.metric_name, outcome.metric) == (
        "tiny/listops s4d seed 3",
        "refused",
        "test/acc",
        None,
    )
    assert outcome.message == "1 invalid config value:"


@pytest.mark.slow  # two sweeps in Python processes that import torch and Lightning: ~20 s
def test_a_sweep_names_its_cells_and_a_complete_sweep_launches_nothing(tmp_path):
    command = [
        sys.executable,
        "-m",
        "lra_snn.train",
        "-m",
        "model=s4d",
        "seed=1,2",
        "profile=tiny",
        "trainer.max_epochs=1",
        "torch_threads=1",
        "trainer.enable_progress_bar=false",
        f"paths.data_dir={tmp_path}/data",
        f"paths.output_dir={tmp_path}/outputs",
        f"paths.results_dir={tmp_path}/results",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    for seed in (1, 2):
        assert any(f"[tiny/listops s4d seed {seed}][INFO] - epoch 1/1: train/loss" in line for line in lines)
        assert any(f"[tiny/listops s4d seed {seed}][INFO] - test: loss" in line for line in lines)
    assert "sweep summary: 2 cells (2 completed)" in first.stdout
    rows = [line for line in lines if line.startswith("| tiny/listops s4d seed")]
    assert [row.split(" | ")[1] for row in rows] == ["completed", "completed"]
    assert all("test/acc" in row and "%" in row for row in rows)
    for noise in ("Total FLOPs", "Tip:", "GPU available", "LeafSpec", "┏"):
        assert noise not in first.stdout + first.stderr

    again = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 of 2 cells completed before: not launched" in again.stdout
    assert "sweep summary: 2 cells (2 done before)" in again.stdout
    assert "epoch" not in again.stdout and "Launching jobs" not in again.stdout
    sweeps = sorted((tmp_path / "outputs" / "sweeps").iterdir())  # one folder per sweep, nothing else
    assert len(sweeps) == 2 and not list(sweeps[1].rglob(".hydra"))  # no job of the second sweep started
    assert len(json.loads((tmp_path / "outputs" / "planned_cells.json").read_text())) == 2  # its 2 cells kept


def test_planned_cells_compose_a_job_once_per_code_version(tmp_path, monkeypatch):
    from lra_snn.training import sweeper

    composed = []

    def compose(seed: int):
        composed.append(seed)
        return OmegaConf.create(
            {
                "profile_name": "mini",
                "task_name": "listops",
                "model": {"name": "s4d"},
                "seed": seed,
                "skip_completed": True,
                "paths": {"result_file": f"/results/seed_{seed}/result.json"},
            }
        )

    cells = sweeper.PlannedCells(tmp_path / "cells.json")
    first = cells.get(["seed=1"], lambda: compose(1))
    cells.save()
    again = sweeper.PlannedCells(tmp_path / "cells.json")
    assert (
        again.get(["seed=1"], lambda: compose(1))
        == first
        == {
            "label": "mini/listops s4d seed 1",
            "task": "listops",
            "result_file": "/results/seed_1/result.json",
            "skip_completed": True,
        }
    )
    assert composed == [1]  # the second sweep found it
    again.get(["seed=2"], lambda: compose(2))
    monkeypatch.setattr(sweeper, "code_version", lambda: "src-0000000000000000")  # the code or configs changed
    changed = sweeper.PlannedCells(tmp_path / "cells.json")
    changed.get(["seed=1"], lambda: compose(1))
    assert composed == [1, 2, 1]


def job_config(tmp_path, mode: str = "MULTIRUN", seed: int = 3):
    """A job's config as Hydra hands it to the callback (the sweep folder, the mode, the cell)."""
    return OmegaConf.create(
        {
            "profile_name": "tiny",
            "task_name": "listops",
            "model": {"name": "s4d"},
            "seed": seed,
            "paths": {"result_file": str(tmp_path / "results" / f"seed_{seed}" / "result.json")},
            "hydra": {"sweep": {"dir": str(tmp_path / "sweep")}, "mode": {"name": mode}, "job": {"num": 1}},
        }
    )


def completed_job(value: float = 0.5) -> JobReturn:
    job = JobReturn()
    job.status = JobStatus.COMPLETED
    job._return_value = value
    return job


def write_record(path, status: str, finished_at: float, acc: float | None = 0.5, message: str = ""):
    from lra_snn.results.record import store_result

    fields = {
        "task": "listops",
        "model": "s4d",
        "seed": 3,
        "profile": "tiny",
        "config_hash": "abc",
        "git_commit": "unknown",
        "config": {},
        "status": status,
        "message": message,
        "metrics": {"test/acc": acc} if acc is not None else {},
        "wall_time_s": 7.0,
    }
    import time as clock

    real = clock.time
    clock.time = lambda: finished_at
    try:
        store_result(path, fields)
    finally:
        clock.time = real


def test_the_outcome_is_what_the_cell_recorded_during_its_job(tmp_path):
    config = job_config(tmp_path)
    result = tmp_path / "results" / "seed_3" / "result.json"
    started = 1_000_000.0
    write_record(result, "completed", started + 5)
    done = cell_outcome(config, completed_job(0.5), started)
    assert (done.label, done.status, done.metric_name, done.metric) == (
        "tiny/listops s4d seed 3",
        "completed",
        "test/acc",
        0.5,
    )
    assert done.seconds is not None and done.seconds > 1e6  # measured from started to now
    # a later failed rerun of the completed cell goes to attempts/: its outcome is that failure
    write_record(result, "failed", started + 20, acc=None, message="RuntimeError: boom")
    failed = cell_outcome(config, completed_job(None), started + 10)
    assert (failed.status, failed.metric, failed.message) == ("failed", None, "RuntimeError: boom")
    # nothing written since the job started: the cell was completed before
    before = cell_outcome(config, completed_job(0.5), started + 100)
    assert (before.status, before.metric, before.seconds) == ("done before", 0.5, None)


def test_the_callback_logs_progress_and_appends_each_outcome(tmp_path, caplog):
    import logging

    from lra_snn.training.sweep_progress import STATE_FILE, SweepProgress, write_state

    write_state(tmp_path / "sweep", total=4, parallel=2)
    state = json.loads((tmp_path / "sweep" / STATE_FILE).read_text())
    assert (state["total"], state["parallel"]) == (4, 2) and state["started"] > 0
    callback = SweepProgress()
    config = job_config(tmp_path)
    with caplog.at_level(logging.INFO, logger="lra_snn.training.sweep_progress"):
        callback.on_job_start(config)
    assert caplog.messages[-1].startswith("sweep: cell 2 of 4 started; 0 done, ")
    callback.on_job_end(config, completed_job(0.5))
    (outcome,) = read_outcomes(tmp_path / "sweep")
    assert (outcome.label, outcome.status) == ("tiny/listops s4d seed 3", "done before")
    with caplog.at_level(logging.INFO, logger="lra_snn.training.sweep_progress"):
        callback.on_job_start(config)
    assert "1 done" not in caplog.messages[-1]  # a cell done before has no time: it does not count
    single = job_config(tmp_path, mode="RUN")
    callback.on_job_end(single, completed_job(0.5))  # a single run: no sweep to report to
    assert len(read_outcomes(tmp_path / "sweep")) == 1


def test_planned_cells_survive_a_damaged_file_and_write_only_when_changed(tmp_path):
    from lra_snn.training import sweeper

    path = tmp_path / "sweeps" / "cells.json"
    cells = sweeper.PlannedCells(path)
    cells.save()
    assert not path.exists()  # nothing planned: nothing written
    path.parent.mkdir()
    path.write_text("[1, 2]")  # not a mapping
    cells = sweeper.PlannedCells(path)
    assert cells.cells == {}
    path.unlink()
    path.parent.rmdir()
    config = job_config(tmp_path)
    config.skip_completed = True
    cells.get(["seed=3"], lambda: config)
    cells.save()  # creates its folder
    text = path.read_text()
    assert text.startswith('{\n "') and text.endswith("}\n")  # indented, one key per line
    assert sweeper.PlannedCells(path).context[1] != "None"


def test_the_newest_record_written_since_the_job_started_is_its_outcome(tmp_path):
    from lra_snn.training.sweep_progress import _newest_record

    result = tmp_path / "results" / "seed_3" / "result.json"
    write_record(result, "completed", 100.0)
    write_record(result, "failed", 200.0, acc=None, message="first failure")
    write_record(result, "failed", 300.0, acc=None, message="second failure")
    assert _newest_record(result, 150.0).message == "second failure"  # the newest attempt
    assert _newest_record(result, 300.0).message == "second failure"  # finished at the start itself counts
    assert _newest_record(result, 301.0) is None
    result.write_text("{ damaged")  # an unreadable result.json: the attempts still tell
    assert _newest_record(result, 150.0).message == "second failure"


def test_an_outcome_records_its_time_and_a_refusal_its_error(tmp_path):
    import time as clock

    config = job_config(tmp_path)
    started = clock.time() - 5.0
    job = JobReturn()
    job.status = JobStatus.FAILED
    job._return_value = ValueError("")
    refused = cell_outcome(config, job, started)
    assert refused.message == "ValueError" and 4.0 < refused.seconds < 60.0
    before = cell_outcome(config, completed_job(0.5), clock.time())
    assert before.metric_name == "test/acc"
    result = tmp_path / "results" / "seed_3" / "result.json"
    write_record(result, "failed", clock.time() + 1, acc=0.3, message="diverged after its test")
    failed = cell_outcome(config, completed_job(None), clock.time())
    assert (failed.status, failed.metric) == ("failed", None)  # a failed run's numbers are not its metric


def test_progress_is_logged_in_sweeps_only_and_names_the_cell(tmp_path, caplog):
    import logging

    from lra_snn.training.log_context import CellNameFilter, set_cell_label
    from lra_snn.training.sweep_progress import SweepProgress, write_state

    write_state(tmp_path / "deep" / "sweep", total=4, parallel=2)  # folders made as needed
    write_state(tmp_path / "deep" / "sweep", total=4, parallel=2)  # and again: the folder exists
    config = job_config(tmp_path)
    config.hydra.sweep.dir = str(tmp_path / "deep" / "sweep")
    append_outcome(tmp_path / "deep" / "sweep", CellOutcome("a", "completed", "test/acc", 0.5, 60.0))
    callback = SweepProgress()
    try:
        with caplog.at_level(logging.INFO, logger="lra_snn.training.sweep_progress"):
            callback.on_job_start(config)
        record = logging.LogRecord("x", logging.INFO, "", 0, "m", (), None)
        CellNameFilter().filter(record)
        assert record.cell == "tiny/listops s4d seed 3"
    finally:
        set_cell_label(None)
    line = caplog.messages[-1]
    assert line.startswith("sweep: cell 2 of 4 started; 1 done, ") and line.endswith("~90 s left")
    assert float(line.split("done, ")[1].split(" s elapsed")[0]) < 5.0
    caplog.clear()
    single = job_config(tmp_path, mode="RUN")
    single.hydra.sweep.dir = str(tmp_path / "deep" / "sweep")
    with caplog.at_level(logging.INFO, logger="lra_snn.training.sweep_progress"):
        callback.on_job_start(single)
    assert caplog.messages == []


def test_planned_cells_make_their_folders(tmp_path):
    from lra_snn.training import sweeper

    cells = sweeper.PlannedCells(tmp_path / "a" / "b" / "cells.json")
    config = job_config(tmp_path)
    config.skip_completed = False
    cells.get(["seed=3"], lambda: config)
    cells.save()
    assert json.loads((tmp_path / "a" / "b" / "cells.json").read_text())


def test_completed_before_reads_the_planned_cell_s_result(tmp_path):
    from lra_snn.training.sweeper import completed_before

    result = tmp_path / "results" / "seed_3" / "result.json"
    cell = {"label": "tiny/listops s4d seed 3", "task": "listops", "result_file": str(result), "skip_completed": True}
    assert completed_before(cell) is None  # no result yet
    write_record(result, "failed", 100.0, acc=None, message="boom")
    assert completed_before(cell) is None  # not completed
    write_record(result, "completed", 200.0, acc=0.5)
    done = completed_before(cell)
    assert done == CellOutcome("tiny/listops s4d seed 3", "done before", "test/acc", 0.5, 7.0, str(result))
    assert completed_before({**cell, "skip_completed": False}) is None  # to be trained again
    result.write_text("{ damaged")
    assert completed_before(cell) is None  # the cell itself names the fault when it runs
