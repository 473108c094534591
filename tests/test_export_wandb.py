"""``lra_snn.cli.export_wandb``: recorded runs -> offline wandb runs, read back from wandb's own ``.wandb`` files.

Three records are written into tmp_path with the production writer: two seeds of one lif_ssm cell in a
stand-in for the shipped folder (seed 1 completed with its ``metrics.csv``, seed 2 failed) and an
interrupted s4d run in a local folder. Every wandb directory points into tmp_path; nothing is sent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lra_snn.cli import export_wandb
from lra_snn.config import PROJECT_ROOT
from lra_snn.results.curves import METRICS_FILENAME, Row, format_rows
from lra_snn.results.record import write_result
from lra_snn.results.schema import content_digest

wandb = pytest.importorskip("wandb", reason="needs pip install -e .[wandb]")
from tests.test_wandb import read_offline_run  # noqa: E402  (after the skip: it needs wandb)

LIF_HASH, S4D_HASH = "1f2e3d4c5b", "a0b1c2d3e4"
CODE, COMMIT = "src-0123456789abcdef", "abc1234def5678abc1234def5678abc1234def56"
LIF_CONFIG = {
    "task_name": "listops",
    "profile_name": "tiny",
    "seed": 1,
    "model": {"name": "lif_ssm", "encoder": {"d_model": 16, "layer": {"neuron": {"name": "lif", "tau": 2.0}}}},
    "trainer": {"max_epochs": 2, "precision": "32-true"},
}
S4D_CONFIG = {"task_name": "listops", "profile_name": "tiny", "seed": 3, "model": {"name": "s4d", "encoder": {}}}
CURVES = [
    Row("train", 0.5, 5, {"loss": 2.25}),
    Row("train", 1.0, 10, {"loss": 2.0}),
    Row("val", 1.0, 10, {"loss": 1.75, "acc": 0.25}),
    Row("train", 1.5, 15, {"loss": 1.5}),
    Row("train", 2.0, 20, {"loss": 1.25}),
    Row("val", 2.0, 20, {"loss": 1.5, "acc": 0.375}),
    Row("final_val", 2.0, 20, {"loss": 1.5, "acc": 0.375}),
    Row("test", 2.0, 20, {"loss": 1.625, "acc": 0.3125}),
]
# the history the CURVES become: one step per row, against the row's optimizer step
HISTORY = [
    {"train/loss": 2.25, "epoch": 0.5, "trainer/global_step": 5},
    {"train/loss": 2.0, "epoch": 1.0, "trainer/global_step": 10},
    {"val/loss": 1.75, "val/acc": 0.25, "epoch": 1.0, "trainer/global_step": 10},
    {"train/loss": 1.5, "epoch": 1.5, "trainer/global_step": 15},
    {"train/loss": 1.25, "epoch": 2.0, "trainer/global_step": 20},
    {"val/loss": 1.5, "val/acc": 0.375, "epoch": 2.0, "trainer/global_step": 20},
    {"final_val/loss": 1.5, "final_val/acc": 0.375, "epoch": 2.0, "trainer/global_step": 20},
    {"test/loss": 1.625, "test/acc": 0.3125, "epoch": 2.0, "trainer/global_step": 20},
]
LIF_TAGS = ["model:lif_ssm", "neuron:lif", "task:listops", "profile:tiny"]


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path, monkeypatch):
    """wandb offline with every folder it writes under tmp_path, torn down after the test."""
    for variable in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb-home" / variable.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield
    wandb.teardown()


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> Path:
    """A stand-in for results/reference-runs: its records are tagged source:shipped."""
    folder = tmp_path / "reference-runs"
    monkeypatch.setattr("lra_snn.config.locations.SHIPPED_RUNS_DIR", folder)
    return folder


def identity(model: str, seed: int, cell: str, config: dict) -> dict:
    """The identity fields of a tiny ListOps record of ``model``."""
    return {
        "task": "listops",
        "model": model,
        "seed": seed,
        "profile": "tiny",
        "config_hash": cell,
        "git_commit": COMMIT,
        "code_version": CODE,
        "config": config,
        "versions": {"torch": "2.13.0"},
    }


def write_records(shipped: Path, local: Path) -> dict[str, Path]:
    """The three records of the module docstring, by short name."""
    lif = shipped / f"tiny/listops/lif_ssm/{LIF_HASH}/seed_1"
    lif.mkdir(parents=True)
    (lif / METRICS_FILENAME).write_text(format_rows(CURVES), encoding="utf-8")
    completed = {
        **identity("lif_ssm", 1, LIF_HASH, LIF_CONFIG),
        "status": "completed",
        "metrics": {"test/acc": 0.3125, "test/loss": 1.625, "val/acc": 0.375, "test/firing_rate": 0.125},
        "wall_time_s": 12.5,
        "steps": 20,
        "n_params": 1234,
        "device": "cpu",
        "metrics_file": METRICS_FILENAME,
    }
    failed = {
        **identity("lif_ssm", 2, LIF_HASH, {**LIF_CONFIG, "seed": 2}),
        "status": "failed",
        "message": "RuntimeError: loss is NaN",
    }
    interrupted = {
        **identity("s4d", 3, S4D_HASH, S4D_CONFIG),
        "status": "interrupted",
        "message": "stopped by SIGTERM at step 7",
    }
    paths = {
        "completed": lif / "result.json",
        "failed": shipped / f"tiny/listops/lif_ssm/{LIF_HASH}/seed_2/result.json",
        "interrupted": local / f"tiny/listops/s4d/{S4D_HASH}/seed_3/result.json",
    }
    for name, fields in (("completed", completed), ("failed", failed), ("interrupted", interrupted)):
        write_result(paths[name], fields)
    return paths


def read_runs(out: Path) -> dict[str, dict]:
    """Each offline run under ``out/wandb`` by its folder's id, checked finished (its last record the exit)."""
    runs = {}
    for folder in sorted((out / "wandb").glob("offline-run-*")):
        run = read_offline_run(folder)
        assert run["last_record"] == "exit", f"{folder} is not a finished run"
        run["config"].pop("_wandb", None)
        runs[folder.name.rpartition("-")[2]] = run
    return runs


def by_name(runs: dict[str, dict]) -> dict[str, dict]:
    """``runs`` keyed by their names (one run per name)."""
    named = {run["name"]: run for run in runs.values()}
    assert len(named) == len(runs), "two runs share a name"
    return named


def export(capsys, *argv: str | Path) -> tuple[int, str, str]:
    """Run the command with ``argv``; its exit status, standard output and standard error."""
    status = export_wandb.main([str(arg) for arg in argv])
    printed = capsys.readouterr()
    return status, printed.out, printed.err


def test_every_run_is_exported_with_group_name_tags_config_summary_and_history(tmp_path, shipped, capsys):
    paths = write_records(shipped, tmp_path / "local")
    out = tmp_path / "out"
    status, printed, errors = export(capsys, "--results", shipped, tmp_path / "local", "--out", out)
    assert status == 0 and errors == ""
    assert printed.splitlines()[-1] == "3 exported, 0 already exported"

    runs = by_name(read_runs(out))
    assert sorted(runs) == ["lif_ssm-listops-seed1", "lif_ssm-listops-seed2", "s4d-listops-seed3"]
    completed, failed, interrupted = (runs[name] for name in sorted(runs))
    for folder_id, run in read_runs(out).items():
        assert run["project"] == "lra-snn" and run["job_type"] == "listops"
        assert run["id"] == folder_id and len(folder_id) == 16 and int(folder_id, 16) >= 0

    # the seeds of one cell share its group; the tags tell the status and where the record came from
    assert completed["group"] == failed["group"] == f"tiny-listops-lif_ssm-{LIF_HASH}"
    assert interrupted["group"] == f"tiny-listops-s4d-{S4D_HASH}"
    assert completed["tags"] == [*LIF_TAGS, "status:completed", "source:shipped"]
    assert failed["tags"] == [*LIF_TAGS, "status:failed", "source:shipped"]
    assert interrupted["tags"] == [
        "model:s4d",
        "neuron:none",
        "task:listops",
        "profile:tiny",
        "status:interrupted",
        "source:local",
    ]

    # the recorded config, the test metrics and the identity
    assert completed["config"] == LIF_CONFIG
    assert interrupted["config"] == S4D_CONFIG
    result = json.loads(paths["completed"].read_text())
    expected = {
        "test/acc": 0.3125,
        "test/loss": 1.625,
        "val/acc": 0.375,
        "test/firing_rate": 0.125,
        "status": "completed",
        "message": "",
        "code_version": CODE,
        "git_commit": COMMIT,
        "seed": 1,
        "config_hash": LIF_HASH,
        "finished_at": result["finished_at"],
        "wall_time_s": 12.5,
        "steps": 20,
        "n_params": 1234,
        "device": "cpu",
        "source": "shipped",
        "result_file": str(paths["completed"].resolve()),
        "attempt": False,
    }
    assert {key: completed["summary"][key] for key in expected} == expected
    assert failed["summary"]["status"] == "failed" and failed["summary"]["message"] == "RuntimeError: loss is NaN"
    assert interrupted["summary"]["status"] == "interrupted" and interrupted["summary"]["seed"] == 3

    # the curves, one history step per metrics.csv row; runs without curves have none
    assert completed["history"] == HISTORY
    assert failed["history"] == [] and interrupted["history"] == []


def test_a_second_export_writes_nothing_and_ids_are_stable(tmp_path, shipped, capsys):
    write_records(shipped, tmp_path / "local")
    out, again = tmp_path / "out", tmp_path / "again"
    export(capsys, "--results", shipped, tmp_path / "local", "--out", out)
    before = sorted(str(path) for path in out.rglob("*"))

    status, printed, _ = export(capsys, "--results", shipped, tmp_path / "local", "--out", out)
    assert status == 0 and printed == "0 exported, 3 already exported\n"
    assert sorted(str(path) for path in out.rglob("*")) == before

    export(capsys, "--results", shipped, tmp_path / "local", "--out", again)  # the same records elsewhere
    ids = {name: run["id"] for name, run in by_name(read_runs(out)).items()}
    assert {name: run["id"] for name, run in by_name(read_runs(again)).items()} == ids
    assert len(set(ids.values())) == 3


def test_a_changed_record_is_exported_again_under_a_new_id(tmp_path, shipped, capsys):
    paths = write_records(shipped, tmp_path / "local")
    out = tmp_path / "out"
    export(capsys, "--results", shipped, "--out", out)
    before = read_runs(out)

    result = json.loads(paths["completed"].read_text())
    result["metrics"]["test/acc"] = 0.5
    result["record_digest"] = content_digest(result)  # rewritten as a run would write it
    paths["completed"].write_text(json.dumps(result), encoding="utf-8")
    status, printed, _ = export(capsys, "--results", shipped, "--out", out)
    assert status == 0 and printed.splitlines()[-1] == "1 exported, 1 already exported"

    after = read_runs(out)
    (new,) = set(after) - set(before)
    assert after[new]["name"] == "lif_ssm-listops-seed1" and after[new]["summary"]["test/acc"] == 0.5
    assert by_name(before)["lif_ssm-listops-seed1"]["summary"]["test/acc"] == 0.3125


def test_an_out_folder_inside_the_shipped_runs_is_refused(tmp_path, capsys):
    inside = PROJECT_ROOT / "results" / "reference-runs" / "wandb-export"
    status, printed, errors = export(capsys, "--results", tmp_path, "--out", inside)
    assert status == 2 and printed == ""
    assert f"--out={inside} lies inside {PROJECT_ROOT / 'results' / 'reference-runs'}, the shipped runs" in errors
    assert not inside.exists()


def test_a_rejected_result_file_is_named_and_skipped(tmp_path, shipped, capsys):
    write_records(shipped, tmp_path / "local")
    bad = shipped / "tiny/listops/s4d/0000000000/seed_1/result.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps({"schema_version": 2, "status": "completed", "task": "listops"}), encoding="utf-8")
    out = tmp_path / "out"

    status, printed, errors = export(capsys, "--results", shipped, "--out", out)
    assert status == 0
    assert errors.startswith(f"skipped {bad}: missing required field 'model'")
    assert printed.splitlines()[-1] == "2 exported, 0 already exported, 1 skipped"
    assert sorted(by_name(read_runs(out))) == ["lif_ssm-listops-seed1", "lif_ssm-listops-seed2"]


def test_without_wandb_the_command_names_the_extra_and_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    status, printed, errors = export(capsys, "--results", tmp_path, "--out", tmp_path / "out")
    assert (status, printed, errors) == (2, "", "lra-export-wandb needs wandb: pip install 'lra-snn[wandb]'\n")
    assert not (tmp_path / "out").exists()


def test_a_run_left_unfinished_by_an_error_is_removed_and_exported_next_time(tmp_path, shipped, monkeypatch, capsys):
    write_records(shipped, tmp_path / "local")
    out = tmp_path / "out"

    def full_disk(self, data, *args, **kwargs):
        raise OSError("no space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(wandb.Run, "log", full_disk)
        with pytest.raises(OSError, match="no space left"):
            export(capsys, "--results", shipped, "--out", out)
    assert list((out / "wandb").glob("offline-run-*")) == []

    status, printed, _ = export(capsys, "--results", shipped, "--out", out)
    assert status == 0 and printed.splitlines()[-1] == "2 exported, 0 already exported"
    assert by_name(read_runs(out))["lif_ssm-listops-seed1"]["history"] == HISTORY
