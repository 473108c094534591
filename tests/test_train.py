"""End to end: compose -> train -> test on the best checkpoint -> result.json -> leaderboard."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from hydra.errors import MissingConfigException

from lra_snn.config import PROJECT_ROOT
from lra_snn.leaderboard import build_leaderboard
from lra_snn.train import run


def test_tiny_listops_s4d_writes_a_complete_result(compose_train):
    cfg = compose_train("data=listops", "model=s4d", "profile=tiny")
    record = run(cfg)
    assert record["status"] == "completed"
    result = json.loads(open(cfg.paths.result_file).read())
    assert result["schema_version"] == 1 and result["status"] == "completed"
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


def test_missing_release_files_record_no_data(compose_train, tmp_path):
    cfg = compose_train("profile=tiny", "data.source=release", f"data.release_dir={tmp_path}/nowhere")
    record = run(cfg)
    assert record["status"] == "no_data"
    assert "make data-listops" in record["message"] and "nowhere" in record["message"]


def test_unknown_option_lists_the_choices(compose_train):
    with pytest.raises(MissingConfigException) as error:
        compose_train("model=not_a_model")
    assert "s4d" in str(error.value)


@pytest.mark.slow
def test_shell_multirun_two_seeds_gives_a_leaderboard_row(tmp_path, train_overrides):
    command = [sys.executable, "-m", "lra_snn.train", "-m", "data=listops", "model=s4d", "seed=1,2", "profile=tiny",
               *train_overrides]
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, capture_output=True, text=True, timeout=600)
    results = sorted((tmp_path / "results" / "runs").rglob("result.json"))
    assert [r.parent.name for r in results] == ["seed_1", "seed_2"]
    markdown, rows = build_leaderboard(tmp_path / "results" / "runs", PROJECT_ROOT / "results" / "reference.yaml")
    (row,) = [r for r in rows if r["model"] == "s4d" and r["task"] == "listops"]
    assert int(row["n_seeds"]) == 2
    assert "(2)" in markdown
