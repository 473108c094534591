"""Reproducibility: deterministic CPU runs of one cell give bit-identical metrics for the same seed,
and ``lra-reproduce`` re-runs a cell from its result.json into a fresh folder and compares."""

from __future__ import annotations

import json

import pytest

from lra_snn.cli import reproduce
from lra_snn.cli.train import run

CELL = ("data=listops", "model=s4d", "profile=tiny", "torch_threads=1", "trainer.deterministic=true")


@pytest.fixture
def recorded(compose_train):
    """A completed deterministic tiny cell: (config, result record)."""
    cfg = compose_train(*CELL)
    record = run(cfg)
    assert record["status"] == "completed"
    return cfg, json.loads(open(cfg.paths.result_file).read())


def test_rerun_from_result_json_is_bit_identical(recorded, tmp_path, capsys):
    cfg, original = recorded
    out = tmp_path / "rerun"
    status = reproduce.main([cfg.paths.result_file, "--out", str(out), "--data-dir", cfg.paths.data_dir])
    assert status == 0, capsys.readouterr()
    assert "reproduced: every metric matches" in capsys.readouterr().out

    (rerun_file,) = (out / "results").rglob("result.json")
    rerun = json.loads(rerun_file.read_text())
    assert rerun["metrics"] == original["metrics"]  # exact: the same bits, not approximately
    assert rerun["config_hash"] == original["config_hash"]
    # the rerun wrote its own folders: nothing points back at the original run
    assert rerun["config"]["paths"]["run_dir"].startswith(str(out))
    assert rerun["config"]["callbacks"]["checkpoint"]["dirpath"].startswith(str(out))
    assert rerun["best_checkpoint"].startswith(str(out))


def test_changed_metric_is_reported_and_fails(recorded, tmp_path, capsys):
    cfg, original = recorded
    edited = json.loads(json.dumps(original))
    edited["metrics"]["test/acc"] += 1e-7
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    status = reproduce.main([str(path), "--out", str(tmp_path / "rerun"), "--data-dir", cfg.paths.data_dir])
    out = capsys.readouterr().out
    assert status == 1
    assert "NOT reproduced" in out and "test/acc" in out
    assert "test/acc" in [line.split()[0] for line in out.splitlines() if line.endswith("NO")]
    # within a tolerance above the change it passes
    status = reproduce.main([str(path), "--tolerance", "1e-6", "--out", str(tmp_path / "rerun2"),
                             "--data-dir", cfg.paths.data_dir])
    assert status == 0


def test_edited_config_and_unusable_files_exit_2_without_running(recorded, tmp_path, capsys):
    _, original = recorded
    edited = json.loads(json.dumps(original))
    edited["config"]["task"]["lr"] = 0.5
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    assert reproduce.main([str(path), "--out", str(tmp_path / "x")]) == 2
    assert "config_hash" in capsys.readouterr().err

    failed = {**original, "status": "failed", "message": "boom"}
    path.write_text(json.dumps(failed))
    assert reproduce.main([str(path), "--out", str(tmp_path / "x")]) == 2
    assert "only completed runs" in capsys.readouterr().err
    assert reproduce.main([str(tmp_path / "missing.json")]) == 2
    assert not (tmp_path / "x").exists()


def test_compare_metrics_flags_missing_and_changed_values():
    rows = reproduce.compare_metrics({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 2.5}, tolerance=0.1)
    assert [(r["metric"], r["ok"]) for r in rows] == [("a", True), ("b", False), ("c", False)]
    assert rows[1]["diff"] == 0.5 and rows[2]["rerun"] is None


def test_repoint_moves_only_paths_under_the_old_folders():
    moves = [("/old/out/runs/cell", "/new/out/runs/cell"), ("/old/out", "/new/out")]
    config = {"a": "/old/out/runs/cell/checkpoints", "b": ["/old/outside", "/old/out"], "c": 3, "d": "/old/outs"}
    assert reproduce.repoint(config, moves) == {
        "a": "/new/out/runs/cell/checkpoints", "b": ["/old/outside", "/new/out"], "c": 3, "d": "/old/outs"}
