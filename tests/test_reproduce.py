"""Reproducibility: deterministic CPU runs of one cell give bit-identical metrics for the same seed,
and ``lra-reproduce`` re-runs a cell from its result.json into a fresh folder and compares. A result
file that names a foreign target, was edited, or would write outside the rerun folder is refused
before anything is built; overrides are reported beside the recorded hash and digest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lra_snn.cli import reproduce
from lra_snn.config import PROJECT_ROOT
from lra_snn.config.provenance import ALLOWED_TARGETS, conf_targets, instantiated_digest
from lra_snn.results.schema import content_digest, parse_record
from lra_snn.training.cell import run

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
    printed = capsys.readouterr().out
    assert "reproduced: every metric matches" in printed
    assert f"config: as recorded (hash {original['config_hash']}, digest {original['instantiated_digest']})" in printed

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
    edited["record_digest"] = content_digest(edited)  # an edit that also rewrote the digest: the rerun tells
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    status = reproduce.main([str(path), "--out", str(tmp_path / "rerun"), "--data-dir", cfg.paths.data_dir])
    out = capsys.readouterr().out
    assert status == 1
    assert "NOT reproduced" in out and "test/acc" in out
    assert "test/acc" in [line.split()[0] for line in out.splitlines() if line.endswith("NO")]
    # within a tolerance above the change it passes
    status = reproduce.main(
        [str(path), "--tolerance", "1e-6", "--out", str(tmp_path / "rerun2"), "--data-dir", cfg.paths.data_dir]
    )
    assert status == 0


def test_edited_config_and_unusable_files_exit_2_without_running(recorded, tmp_path, capsys):
    _, original = recorded
    edited = json.loads(json.dumps(original))
    edited["config"]["task"]["lr"] = 0.5
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    assert reproduce.main([str(path), "--out", str(tmp_path / "x")]) == 2
    assert "its record_digest does not match its content" in capsys.readouterr().err
    edited["record_digest"] = content_digest(edited)  # the digest rewritten too: the config hash tells
    path.write_text(json.dumps(edited))
    assert reproduce.main([str(path), "--out", str(tmp_path / "x")]) == 2
    assert "config_hash" in capsys.readouterr().err

    failed = {**original, "status": "failed", "message": "boom"}
    failed["record_digest"] = content_digest(failed)
    path.write_text(json.dumps(failed))
    assert reproduce.main([str(path), "--out", str(tmp_path / "x")]) == 2
    assert "only completed runs" in capsys.readouterr().err
    assert reproduce.main([str(tmp_path / "missing.json")]) == 2
    path.write_text('{"schema_version": 2,')
    assert reproduce.main([str(path), "--out", str(tmp_path / "x")]) == 2
    assert f"{path}: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_compare_metrics_flags_missing_and_changed_values():
    rows = reproduce.compare_metrics({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 2.5}, tolerance=0.1)
    assert [(r["metric"], r["ok"]) for r in rows] == [("a", True), ("b", False), ("c", False)]
    assert rows[1]["diff"] == 0.5 and rows[2]["rerun"] is None


def test_repoint_moves_only_paths_under_the_old_folders():
    moves = [("/old/out/runs/cell", "/new/out/runs/cell"), ("/old/out", "/new/out")]
    config = {"a": "/old/out/runs/cell/checkpoints", "b": ["/old/outside", "/old/out"], "c": 3, "d": "/old/outs"}
    assert reproduce.repoint(config, moves) == {
        "a": "/new/out/runs/cell/checkpoints",
        "b": ["/old/outside", "/new/out"],
        "c": 3,
        "d": "/old/outs",
    }


def edited_copy(original: dict, tmp_path: Path, edit, redigest: bool = False) -> Path:
    """``original`` changed by ``edit(config)`` in a new file, its record digest recomputed (so the checks
    behind it speak); ``redigest``: its instantiated digest recomputed to match too."""
    edited = json.loads(json.dumps(original))
    edit(edited["config"])
    if redigest:
        edited["instantiated_digest"] = instantiated_digest(edited["config"])
    edited["record_digest"] = content_digest(edited)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    return path


@pytest.mark.parametrize("redigest", [False, True])
def test_a_foreign_target_is_refused_before_anything_is_built(recorded, tmp_path, capsys, redigest):
    _, original = recorded
    victim = tmp_path / "written_by_torch_save"
    path = edited_copy(
        original,
        tmp_path,
        lambda config: config["callbacks"].update(evil={"_target_": "torch.save", "obj": 1, "f": str(victim)}),
        redigest,
    )
    assert reproduce.main([str(path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: refusing to instantiate" in err and "callbacks.evil._target_ = 'torch.save'" in err
    assert not victim.exists() and not (tmp_path / "x").exists()


def test_an_edited_callbacks_section_fails_the_digest_check_with_or_without_overrides(recorded, tmp_path, capsys):
    cfg, original = recorded
    path = edited_copy(
        original, tmp_path, lambda config: config["callbacks"]["lr_monitor"].update(logging_interval="epoch")
    )
    for overrides in ([], ["trainer.max_epochs=1"]):
        assert (
            reproduce.main([str(path), "--out", str(tmp_path / "x"), "--data-dir", cfg.paths.data_dir, *overrides]) == 2
        )
        assert "not the recorded instantiated_digest" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_callback_writing_outside_the_rerun_folder_is_refused_even_with_a_matching_digest(recorded, tmp_path, capsys):
    _, original = recorded
    path = edited_copy(
        original,
        tmp_path,
        lambda config: config["callbacks"]["checkpoint"].update(dirpath=str(tmp_path / "elsewhere")),
        redigest=True,
    )
    assert reproduce.main([str(path), "--out", str(tmp_path / "x")]) == 2
    assert (
        f"callbacks.checkpoint.dirpath = '{tmp_path / 'elsewhere'}' is outside the rerun folder"
        in capsys.readouterr().err
    )


def test_an_override_is_reported_beside_the_recorded_hash_and_digest(recorded, tmp_path, capsys):
    cfg, original = recorded
    status = reproduce.main(
        [
            cfg.paths.result_file,
            "--out",
            str(tmp_path / "rerun"),
            "--data-dir",
            cfg.paths.data_dir,
            "callbacks.lr_monitor.logging_interval=epoch",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0, printed  # not a computed setting: the same metrics
    (rerun_file,) = (tmp_path / "rerun" / "results").rglob("result.json")
    rerun_digest = json.loads(rerun_file.read_text())["instantiated_digest"]
    assert rerun_digest != original["instantiated_digest"]
    assert "config: deliberately different (overrides callbacks.lr_monitor.logging_interval=epoch)" in printed
    assert f"config hash  recorded {original['config_hash']}  rerun {original['config_hash']}" in printed
    assert f"digest       recorded {original['instantiated_digest']}  rerun {rerun_digest}" in printed


def test_a_schema_1_result_is_rerun_only_with_trust_config(recorded, tmp_path, capsys):
    _, original = recorded
    old = {
        key: value
        for key, value in original.items()
        if key not in ("instantiated_digest", "segments", "record_digest")  # none of them in version 1
    }
    path = tmp_path / "v1.json"
    path.write_text(json.dumps({**old, "schema_version": 1}))
    assert reproduce.main([str(path), "--out", str(tmp_path / "x")]) == 2
    assert "records no instantiated_digest" in capsys.readouterr().err and not (tmp_path / "x").exists()
    record = parse_record(json.loads(path.read_text()))
    assert reproduce.verify_recorded(record, path, trust_config=True) == [
        "schema 1 result: callbacks and logger sections not checked (--trust-config)"
    ]


def test_the_allowed_targets_are_those_the_configs_name():
    assert "lra_snn.neurons.build_neuron" in ALLOWED_TARGETS and "lightning.Trainer" in ALLOWED_TARGETS
    assert "os.system" not in ALLOWED_TARGETS


def test_a_new_config_allows_its_target_and_nothing_else(tmp_path):
    block = tmp_path / "model" / "block" / "my_block.yaml"
    block.parent.mkdir(parents=True)
    block.write_text("# @package model.encoder.layer\n_target_: my_package.MyBlock\n_partial_: true\n")
    (tmp_path / "train.yaml").write_text("trainer:\n  _target_: lightning.Trainer\nseed: 1\n")
    assert conf_targets(tmp_path) == {"my_package.MyBlock", "lightning.Trainer"}


SHIPPED = sorted((PROJECT_ROOT / "results" / "reference-runs").rglob("result.json"))


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.parent.relative_to(PROJECT_ROOT)) for p in SHIPPED])
def test_every_shipped_run_passes_the_checks_before_a_rerun(path, tmp_path):
    """The recorded targets are allowed, the recorded config hashes to the recorded cell hash and digests to
    the recorded digest, and its rebuilt config writes only under the rerun folder."""
    if json.loads(path.read_text(encoding="utf-8"))["status"] != "completed":
        pytest.skip("only completed runs are reproduced")
    record = reproduce.load_record(path)
    reproduce.check_targets(record.config, str(path))
    assert reproduce.verify_recorded(record, path, trust_config=False) == []
    cfg = reproduce.rebuild_config(record, tmp_path / "out", tmp_path / "data", [])
    reproduce.check_writes_inside(cfg, tmp_path / "out")


def test_relative_writer_paths_are_taken_under_the_rerun_folder():
    section = {
        "csv": {"_target_": "x.CSVLogger", "save_dir": "logs", "name": "logs"},
        "checkpoint": {"dirpath": "ckpt", "monitor": "val/acc", "filename": "best"},
        "absolute": {"dirpath": "/already/absolute"},
        "list": [{"save_dir": "more"}],
    }
    assert reproduce.anchor_relative_writers(section, Path("/out")) == {
        "csv": {"_target_": "x.CSVLogger", "save_dir": "/out/logs", "name": "logs"},
        "checkpoint": {"dirpath": "/out/ckpt", "monitor": "val/acc", "filename": "best"},
        "absolute": {"dirpath": "/already/absolute"},
        "list": [{"save_dir": "/out/more"}],
    }


def test_a_relative_logger_folder_in_a_record_writes_under_the_rerun_folder(recorded, tmp_path):
    _, original = recorded
    path = edited_copy(original, tmp_path, lambda config: config["logger"]["csv"].update(save_dir="rel_logs"))
    record = reproduce.load_record(path)
    cfg = reproduce.rebuild_config(record, tmp_path / "out", tmp_path / "data", [])
    assert cfg.logger.csv.save_dir == str(tmp_path / "out" / "rel_logs")
    reproduce.check_writes_inside(cfg, tmp_path / "out")  # now inside: no error


def test_a_rerun_never_writes_into_the_shipped_runs(recorded, tmp_path, capsys):
    from lra_snn.config.locations import SHIPPED_RUNS_DIR

    _, original = recorded
    path = edited_copy(original, tmp_path, lambda config: None)
    with pytest.raises(SystemExit) as stop:
        reproduce.main([str(path), "--out", str(SHIPPED_RUNS_DIR / "mine")])
    assert stop.value.code == 2
    refusal = f"--out={SHIPPED_RUNS_DIR / 'mine'} lies inside {SHIPPED_RUNS_DIR}, the shipped runs"
    assert refusal in capsys.readouterr().err
