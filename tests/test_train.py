"""End to end: compose -> train -> test on the best checkpoint -> result.json -> leaderboard."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

from lra_snn.config import PROJECT_ROOT
from lra_snn.results.reference import PUBLISHED_FILE
from lra_snn.results.render import build_leaderboard
from lra_snn.training.cell import CellRefused, RunFailed, run
from lra_snn.training.lock import LOCK_FILENAME, cell_lock
from lra_snn.training.sweeper import completed_before, planned_cell
from lra_snn.training.validate import ConfigError
from tests.data.conftest import TINY_LISTOPS
from tests.fakes import LISTOPS_FILES, write_listops_release


def test_tiny_listops_s4d_writes_a_complete_result(compose_train):
    cfg = compose_train("data=listops", "model=s4d", "profile=tiny")
    record = run(cfg)
    assert record["status"] == "completed"
    result = json.loads(Path(cfg.paths.result_file).read_text())
    assert result["schema_version"] == 2 and result["status"] == "completed"
    assert (result["task"], result["model"], result["seed"], result["profile"]) == ("listops", "s4d", 1, "tiny")
    metrics = result["metrics"]
    for key in ("val/acc", "test/acc", "val/loss", "test/loss", "test/majority_rate"):
        assert metrics[key] is not None and math.isfinite(metrics[key]), key
    assert 0 <= metrics["test/acc"] <= 1 and 0.1 <= metrics["test/majority_rate"] <= 1
    assert result["steps"] > 0 and result["n_params"] > 0 and result["wall_time_s"] > 0
    assert result["versions"]["torch"] and result["git_commit"]
    assert result["config"]["data"]["n_train"] == 256
    assert f"/listops/s4d/{result['config_hash']}/seed_1/" in cfg.paths.result_file

    # the same cell again is recognised as completed and not retrained
    again = run(compose_train("data=listops", "model=s4d", "profile=tiny"))
    assert again["wall_time_s"] == result["wall_time_s"]
    # a changed setting is a new cell, never mixed with the old one
    changed = compose_train("data=listops", "model=s4d", "profile=tiny", "task.lr=0.003")
    assert changed.paths.result_file != cfg.paths.result_file


def test_a_cell_whose_release_changed_trains_again_and_a_sweep_launches_it(compose_train, tmp_path):
    bounds = {key: TINY_LISTOPS[key] for key in ("min_length", "max_length", "max_depth", "max_args")}
    folder = write_listops_release(tmp_path / "release", n_train=48, n_val=16, n_test=16, seed=3, **bounds)
    overrides = ("data=listops", "model=s4d", "profile=tiny", "data.source=release", f"data.release_dir={folder}")
    cfg = compose_train(*overrides)
    first = run(cfg)
    assert first["data"]["sources"].keys() == {str(folder / name) for name in LISTOPS_FILES.values()}
    assert completed_before(planned_cell(cfg)) is not None  # nothing changed: left out of a sweep
    assert run(compose_train(*overrides))["finished_at"] == first["finished_at"]  # and skipped by the cell

    test_file = folder / LISTOPS_FILES["test"]
    test_file.touch()  # the same content, new change time: the sweep launches it, the cell finds the same data
    assert completed_before(planned_cell(cfg)) is None
    assert run(compose_train(*overrides))["finished_at"] == first["finished_at"]

    text = test_file.read_bytes()
    expression, label = text.split(b"\r\n")[1].split(b"\t")  # the first example, its label edited in place
    edited = text.replace(expression + b"\t" + label, expression + b"\t" + str((int(label) + 1) % 10).encode(), 1)
    test_file.write_bytes(edited)
    assert len(edited) == len(text) and completed_before(planned_cell(cfg)) is None
    second = run(compose_train(*overrides))
    assert second["status"] == "completed" and second["finished_at"] != first["finished_at"]
    assert second["data"]["digest"] != first["data"]["digest"]
    assert list((Path(cfg.paths.run_dir) / "replaced").glob("*/checkpoints"))  # the first training kept aside
    attempts = [json.loads(p.read_text()) for p in Path(cfg.paths.result_file).parent.glob("attempts/*.json")]
    assert [a["data"]["digest"] for a in attempts] == [first["data"]["digest"]]  # the first result kept too

    val_file = folder / LISTOPS_FILES["val"]
    val_text, test_text = val_file.read_bytes(), test_file.read_bytes()
    val_file.write_bytes(test_text)  # validation and test trade contents: the same digests, in other files
    test_file.write_bytes(val_text)
    third = run(compose_train(*overrides))
    assert third["finished_at"] != second["finished_at"] and third["data"]["digest"] != second["data"]["digest"]


def test_missing_release_stops_the_run_before_anything_is_built(compose_train, tmp_path):
    cfg = compose_train("profile=tiny", "data.source=release", f"data.release_dir={tmp_path}/nowhere")
    with pytest.raises(ConfigError, match=r"make data-lra") as error:
        run(cfg)
    assert "nowhere" in str(error.value) and "data.source=generate" in str(error.value)
    assert not Path(cfg.paths.result_file).exists()


def test_unknown_option_lists_the_choices(compose_train):
    with pytest.raises(MissingConfigException) as error:
        compose_train("model=not_a_model")
    assert "s4d" in str(error.value)


@pytest.mark.slow
def test_shell_multirun_two_seeds_gives_a_leaderboard_row(tmp_path, train_overrides):
    command = [
        sys.executable,
        "-m",
        "lra_snn.train",
        "-m",
        "data=listops",
        "model=s4d",
        "seed=1,2",
        "profile=tiny",
        *train_overrides,
    ]
    finished = subprocess.run(command, cwd=PROJECT_ROOT, check=True, capture_output=True, text=True, timeout=600)
    assert "sweep: cell 2 of 2" in finished.stdout + finished.stderr
    results = sorted((tmp_path / "results" / "runs").rglob("result.json"))
    assert [r.parent.name for r in results] == ["seed_1", "seed_2"]
    markdown, rows = build_leaderboard(tmp_path / "results" / "runs", PUBLISHED_FILE)
    (row,) = [r for r in rows if r["model"] == "s4d" and r["task"] == "listops"]
    assert int(row["n_seeds"]) == 2
    assert "(2)" in markdown


def test_nan_loss_fails_the_cell_naming_the_step(compose_train):
    cfg = compose_train("profile=tiny", "task.lr=inf")
    with pytest.raises(RunFailed, match=r"non-finite training loss .* at global step"):
        run(cfg)
    result = json.loads(Path(cfg.paths.result_file).read_text())
    assert result["status"] == "failed" and "global step" in result["message"]
    assert "tiny/listops/s4d" in result["message"]


@pytest.mark.parametrize("content", ["foreign", "corrupt"])
def test_unusable_last_checkpoint_is_refused_not_restarted(compose_train, content):
    first = compose_train("profile=tiny", "trainer.max_epochs=1")
    run(first)
    other = compose_train("profile=tiny", "trainer.max_epochs=1", "task.lr=0.002")
    target = Path(other.paths.run_dir) / "checkpoints" / "last.ckpt"
    target.parent.mkdir(parents=True)
    if content == "foreign":
        shutil.copy(Path(first.paths.run_dir) / "checkpoints" / "last.ckpt", target)
        expected = "belongs to cell"
    else:
        target.write_bytes(b"not a checkpoint")
        expected = "cannot read checkpoint"
    with pytest.raises(RunFailed, match=expected):
        run(other)
    assert str(target) in json.loads(Path(other.paths.result_file).read_text())["message"]


def test_a_model_that_cannot_be_built_fails_the_cell_on_record(compose_train):
    # validation checks the keys it knows; a key the block's constructor does not take fails the build
    cfg = compose_train("profile=tiny", "+model.encoder.layer.not_an_option=1")
    with pytest.raises(RunFailed, match="not_an_option"):
        run(cfg)
    assert json.loads(Path(cfg.paths.result_file).read_text())["status"] == "failed"


def test_a_typo_in_an_override_key_is_refused_naming_it(compose_train):
    with pytest.raises(ConfigCompositionException, match=r"trainer\.max_epoch'"):
        compose_train("trainer.max_epoch=3")


def test_the_recorded_commit_is_the_one_at_the_start_of_the_cell(compose_train, monkeypatch):
    # a sweep may outlive a commit: the result names the code the cell started with
    import lra_snn.training.cell as train_module

    head = {"commit": "at-start"}
    build_task = train_module.build_task

    def build_then_commit(*args, **kwargs):
        task = build_task(*args, **kwargs)
        head["commit"] = "committed-while-training"
        return task

    monkeypatch.setattr(train_module, "git_commit", lambda: head["commit"])
    monkeypatch.setattr(train_module, "build_task", build_then_commit)
    record = run(compose_train("data=listops", "model=s4d", "profile=tiny", "trainer.max_epochs=1"))
    assert record["git_commit"] == "at-start"


# --------------------------------------------------------------------------- results that cannot lie or be lost


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model.name=../../x", "model.name='../../x'"),
        ("task_name=a/b", "task_name='a/b'"),
        ("profile_name=.hidden", "profile_name='.hidden'"),
        ("paths.cell=tiny/../../../escape", "paths.cell='tiny/../../../escape'"),
    ],
)
def test_a_name_that_would_leave_its_folders_is_refused_naming_the_key(compose_train, tmp_path, override, named):
    with pytest.raises(CellRefused) as error:
        run(compose_train("profile=tiny", override))
    assert named in str(error.value)
    assert "letters, digits" in str(error.value)
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "results").exists()


def test_the_command_line_refuses_such_a_name_before_anything_is_created(tmp_path, train_overrides):
    command = [sys.executable, "-m", "lra_snn.train", "profile=tiny", "model.name=ok,../../x", *train_overrides]
    finished = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 2
    assert "model.name='../../x' becomes a folder name" in finished.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_second_launch_of_a_running_cell_is_refused_naming_the_lock(compose_train):
    cfg = compose_train("profile=tiny", "trainer.max_epochs=1")
    lock = Path(cfg.paths.run_dir) / LOCK_FILENAME
    with cell_lock(Path(cfg.paths.run_dir)), pytest.raises(CellRefused) as error:
        run(cfg)
    assert f"{lock} is locked by pid {os.getpid()} on" in str(error.value)
    assert not Path(cfg.paths.result_file).exists()  # nothing recorded by the refused launch
    assert run(cfg)["status"] == "completed"  # the lock goes with its holder


def test_a_lock_path_that_is_a_folder_or_a_run_folder_that_is_a_file_is_refused_with_the_fix(compose_train):
    cfg = compose_train("profile=tiny", "trainer.max_epochs=1")
    run_dir = Path(cfg.paths.run_dir)
    (run_dir / LOCK_FILENAME).mkdir(parents=True)
    with pytest.raises(CellRefused, match=re.escape(f"{run_dir / LOCK_FILENAME}, the cell's lock file, is a folder")):
        run(cfg)
    (run_dir / LOCK_FILENAME).rmdir()  # following the advice
    shutil.rmtree(run_dir)
    run_dir.write_text("")
    with pytest.raises(ConfigError, match=re.escape(f"{run_dir} is a file, not a folder, where the run needs")):
        run(cfg)  # found with the other config problems, before the cell's lock is taken
    run_dir.unlink()  # following the advice
    assert run(cfg)["status"] == "completed"


def test_skip_completed_false_trains_again_from_scratch(compose_train):
    first = run(compose_train("profile=tiny"))
    cfg = compose_train("profile=tiny", "skip_completed=false")
    again = run(cfg)
    # trained from step 0 (re-evaluating the old best.ckpt would show one segment starting at its last step)
    assert [(s["first_step"], s["last_step"]) for s in again["segments"]] == [(0, first["steps"])]
    assert again["finished_at"] > first["finished_at"]
    (kept,) = (Path(cfg.paths.result_file).parent / "attempts").glob("*-completed.json")
    assert json.loads(kept.read_text())["finished_at"] == first["finished_at"]
    (replaced,) = (Path(cfg.paths.run_dir) / "replaced").iterdir()  # the first training's files, kept
    assert (replaced / "checkpoints" / "best.ckpt").exists() and (replaced / "logs" / "metrics.csv").exists()
    assert stat.S_IMODE(Path(cfg.paths.result_file).stat().st_mode) == 0o644


def test_a_failed_rerun_keeps_the_completed_result_and_is_recorded_beside_it(compose_train, tmp_path):
    cfg = compose_train("profile=tiny")
    run(cfg)
    completed = Path(cfg.paths.result_file).read_text()
    crashing = compose_train(
        "profile=tiny",
        "skip_completed=false",
        "+callbacks.crash._target_=tests.fakes.CrashAtStep",
        "+callbacks.crash.step=3",
    )
    assert crashing.paths.result_file == cfg.paths.result_file  # callbacks are not part of the cell
    with pytest.raises(RunFailed, match="crash injected after step 3"):
        run(crashing)
    assert Path(cfg.paths.result_file).read_text() == completed
    (attempt,) = (Path(cfg.paths.result_file).parent / "attempts").glob("*-failed.json")
    assert "crash injected after step 3" in json.loads(attempt.read_text())["message"]
    markdown, rows = build_leaderboard(tmp_path / "results" / "runs", PUBLISHED_FILE)
    assert rows[0]["n_seeds"] == 1 and rows[0]["n_failed"] == 1
    assert "seed 1: a later attempt failed, the completed result still counts" in markdown


def test_an_unreadable_result_file_is_refused_not_overwritten(compose_train):
    cfg = compose_train("profile=tiny")
    path = Path(cfg.paths.result_file)
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": 2, "status": "compl')
    with pytest.raises(CellRefused, match=f"{path}: not valid JSON .*; correct that file or move it away"):
        run(cfg)
    assert path.read_text() == '{"schema_version": 2, "status": "compl'


def test_two_seeds_train_two_different_runs_and_one_seed_the_same_run(compose_train, tmp_path):
    from lra_snn.results.curves import read_metrics_file

    def train(seed: int, results: str) -> tuple[dict, list]:
        cfg = compose_train("profile=tiny", f"seed={seed}", f"paths.results_dir={tmp_path}/{results}")
        record = run(cfg)
        assert record["status"] == "completed"
        rows = read_metrics_file(Path(cfg.paths.result_file).parent / "metrics.csv")
        return record["metrics"], [row.values.get("loss") for row in rows if row.stage == "train"]

    one, one_curve = train(1, "a")
    two, two_curve = train(2, "a")
    again, again_curve = train(1, "b")  # the same seed in another results folder: the same computation
    assert one_curve != two_curve and one["test/loss"] != two["test/loss"]
    assert one_curve == again_curve and one["test/loss"] == again["test/loss"]


def test_the_board_s_advice_on_an_edited_result_works_when_followed(compose_train, tmp_path):
    cfg = compose_train("data=listops", "model=s4d", "profile=tiny")
    first = run(cfg)
    result_file = Path(cfg.paths.result_file)
    edited = json.loads(result_file.read_text())
    edited["metrics"]["test/acc"] = 0.99  # its record digest left as it was
    result_file.write_text(json.dumps(edited))
    runs = Path(cfg.paths.results_dir) / "runs"
    markdown, rows = build_leaderboard(runs, PUBLISHED_FILE)
    assert rows == [] and "move it out of the results folder and rerun the cell" in markdown
    with pytest.raises(CellRefused, match="move it away to run this cell"):
        run(cfg)
    result_file.rename(tmp_path / "edited.json")  # the advice
    again = run(cfg)
    assert again["status"] == "completed" and again["metrics"]["test/acc"] == first["metrics"]["test/acc"]
    markdown, rows = build_leaderboard(runs, PUBLISHED_FILE)
    assert [row["n_seeds"] for row in rows] == [1] and "usable result file" in markdown


def test_a_file_where_the_data_cache_belongs_refuses_the_cell_with_nothing_recorded(compose_train):
    from hydra.utils import instantiate

    cfg = compose_train("data=listops", "model=s4d", "profile=tiny")
    cache = instantiate(cfg.data).cache_dir()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("not a cache")
    with pytest.raises(CellRefused, match=re.escape(f"{cache} is a file, where a cache folder belongs")):
        run(cfg)
    assert not Path(cfg.paths.result_file).exists()
    cache.unlink()  # the advice
    assert run(cfg)["status"] == "completed"
