"""The result schema (lra_snn.results.schema): version 2 written and read back, version 1 still read, bad
records refused with the reason, its JSON Schema in docs/results.md; the atomic writer's file mode; store_result
never loses or hides a result."""

from __future__ import annotations

import json
import math
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lra_snn.config import PROJECT_ROOT
from lra_snn.results.atomic import write_atomically
from lra_snn.results.record import code_version, read_result, store_result, write_result
from lra_snn.results.render import write_leaderboard
from lra_snn.results.runs import load_runs
from lra_snn.results.schema import (
    CLOCK_SKEW_S,
    SCHEMA_VERSION,
    ResultFileError,
    content_digest,
    json_schema,
    new_record,
    parse_record,
    read_record,
)


def fields(**changes) -> dict:
    """A completed run's fields as the trainer writes them (schema 2, without the stamp)."""
    base = {
        "status": "completed",
        "task": "listops",
        "model": "s4d",
        "seed": 1,
        "profile": "tiny",
        "config_hash": "abc123",
        "git_commit": "0" * 40,
        "versions": {"torch": "2.13.0"},
        "config": {"seed": 1},
        "instantiated_digest": "f" * 64,
        "metrics": {"test/acc": 0.5, "test/loss": 1.2, "val/acc": 0.4},
        "wall_time_s": 3.0,
        "steps": 24,
        "n_params": 100,
        "device": "cpu",
        "best_checkpoint": "/x/best.ckpt",
        "segments": [
            {"started_at": "2026-01-01T00:00:00+00:00", "wall_time_s": 1.0, "first_step": 0, "last_step": 13},
            {"started_at": "2026-01-01T01:00:00+00:00", "wall_time_s": 2.0, "first_step": 13, "last_step": 24},
        ],
        "data": {"digest": "d" * 64, "sources": {"/data/lra_release/listops-1000": "e" * 64}},
    }
    return {**base, **changes}


def test_version_2_round_trips_through_a_file(tmp_path):
    path = tmp_path / "result.json"
    written = write_result(path, fields())
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION == 2
    read = read_record(path)
    assert read == written
    assert [(s.first_step, s.last_step) for s in read.segments] == [(0, 13), (13, 24)]
    assert read.instantiated_digest == "f" * 64 and read.metrics["test/acc"] == 0.5


def test_code_version_and_optional_extra_keys_round_trip(tmp_path):
    path = tmp_path / "result.json"
    written = write_result(path, fields(code_version="src-0123456789abcdef", energy_prf_convention_mj=0.5))
    read = read_record(path)
    assert read == written and read.code_version == "src-0123456789abcdef"
    assert read.extra == {"energy_prf_convention_mj": 0.5}
    assert json.loads(path.read_text())["energy_prf_convention_mj"] == 0.5
    assert read_record(_written(tmp_path / "old.json", fields())).code_version is None  # written before it existed


def _written(path: Path, data: dict) -> Path:
    path.write_text(json.dumps({**data, "schema_version": 2, "finished_at": "2026-01-01T00:00:00+00:00"}))
    return path


def _tree(root: Path) -> Path:
    for name, text in [
        ("lra_snn/a.py", "x = 1\n"),
        ("conf/model/m.yaml", "d: 4\n"),
        ("results/r/result.json", "{}"),
        ("docs/d.md", "doc"),
    ]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_code_version_covers_package_source_and_configs_only(tmp_path):
    root = _tree(tmp_path)
    base = code_version(root)
    assert base.startswith("src-") and len(base) == 20
    (root / "results/r/result.json").write_text('{"a": 1}')  # a result written between runs
    (root / "docs/d.md").write_text("edited")
    (root / "results/new.json").write_text("{}")
    assert code_version(root) == base
    (root / "conf/model/m.yaml").write_text("d: 8\n")
    assert code_version(root) != base
    (root / "conf/model/m.yaml").write_text("d: 4\n")
    assert code_version(root) == base
    (root / "lra_snn/b.py").write_text("")
    assert code_version(root) != base


def test_every_committed_result_reads_under_its_cell():
    runs, problems = load_runs(PROJECT_ROOT / "results" / "reference-runs")
    assert not problems
    assert len(runs) >= 30 and all(not run.attempt for run in runs)
    record = read_record(runs[0].path)
    assert record.config["paths"]["cell"] in str(runs[0].path)


def test_a_schema_1_file_still_reads():
    # a result.json as the version-1 writer left it (mini ListOps, S4D, seed 1)
    record = read_record(Path(__file__).parent / "fixtures" / "result_schema1.json")
    assert record.schema_version == 1 and record.instantiated_digest is None and record.segments == ()
    assert record.status == "completed" and record.metrics["test/acc"] == pytest.approx(0.529, abs=1e-6)


def test_a_schema_1_file_without_finished_at_is_dated_by_its_modification_time():
    data = {
        "schema_version": 1,
        "status": "failed",
        "message": "boom",
        "task": "listops",
        "model": "s4d",
        "seed": 1,
        "profile": "mini",
        "config_hash": "h",
        "git_commit": "c",
    }
    assert parse_record(data, file_time=1000.0).finished_at == 1000.0
    with pytest.raises(ResultFileError, match="'status' is 'interrupted', expected 'completed', 'failed' or 'no_data'"):
        parse_record({**data, "status": "interrupted"}, file_time=1000.0)  # a status version 1 did not have


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "done"}, "field 'status' is 'done', expected 'completed', 'interrupted', 'failed' or 'no_data'"),
        ({"task": None}, "field 'task' is None, expected 'listops', 'text'"),
        ({"status": "failed"}, "field 'message' is empty; a failed record says what happened"),
        ({"seed": "1"}, "field 'seed' is '1', expected int"),
        ({"seed": True}, "field 'seed' is True, expected int"),
        ({"steps": 24.0}, "field 'steps' is 24.0, expected int"),
        ({"wall_time_s": False}, "field 'wall_time_s' is False, expected a number"),
        ({"versions": {"torch": 2}}, "versions['torch'] is 2, expected str"),
        ({"metrics": {"test/acc": "0.5"}}, "metrics['test/acc'] is '0.5', expected a number"),
        ({"metrics": {"test/acc": True}}, "metrics['test/acc'] is True, expected a number"),
        ({"metrics": {"test/acc": 50.0}}, "is not a fraction in [0, 1]"),
        ({"metrics": {"val/acc": 0.5}}, "completed run lacks a number in metrics['test/acc']"),
        ({"config": None}, "missing required field 'config'"),
        ({"segments": [{"started_at": "yesterday"}]}, "segments[0].started_at is 'yesterday', not an ISO 8601 time"),
        ({"segments": [{"started_at": "2026-01-01T00:00:00+00:00"}]}, "missing required field 'segments[0].last_step'"),
        ({"segments": [7]}, "segments[0] is 7, expected an object"),
        (
            {"segments": [dict(fields()["segments"][0], first_step=True)]},
            "segments[0].first_step is True, expected int",
        ),
        ({"segments": [dict(fields()["segments"][0], wall_time_s=-1.0)]}, "segments[0].wall_time_s is -1.0, expected"),
        ({"finished_at": "2026-01-01T00:00:00"}, "has no time zone"),
    ],
)
def test_bad_version_2_records_are_refused_with_the_reason(change, reason):
    data = {**new_record(fields()).content(), **change}  # without its digest: the field checks speak
    if change.get("config", 0) is None:
        del data["config"]
    with pytest.raises(ResultFileError) as error:
        parse_record(data)
    assert reason in str(error.value)


def test_every_problem_of_a_record_is_named_on_one_line():
    data = {**new_record(fields()).content(), "seed": "1", "device": 5, "segments": [{"started_at": 3}]}
    with pytest.raises(ResultFileError) as error:
        parse_record(data)
    assert str(error.value) == (
        "field 'seed' is '1', expected int; field 'device' is 5, expected str; "
        "segments[0].started_at is 3, expected str; missing required field 'segments[0].wall_time_s'; "
        "missing required field 'segments[0].first_step'; missing required field 'segments[0].last_step'"
    )
    assert error.value.__cause__ is None and error.value.__suppress_context__  # no pydantic traceback


def test_null_optional_fields_read_as_absent_and_nan_marks_a_diverged_run():
    written = new_record(fields()).content()
    nulls = dict.fromkeys(("message", "versions", "segments", "wall_time_s", "device", "code_version"))
    record = parse_record({**written, **nulls, "metrics": {"test/acc": float("nan")}})
    assert (record.message, record.versions, record.segments, record.wall_time_s) == ("", {}, (), None)
    assert math.isnan(record.metrics["test/acc"]) and record.code_version is None
    wall = parse_record({**written, "wall_time_s": 3}).wall_time_s
    assert wall == 3.0 and type(wall) is float


def test_the_json_schema_states_the_fields_a_record_writes():
    schema = json.loads(json_schema())
    written = new_record(fields(), finished_at=0.0).to_json()
    assert set(schema["properties"]) == set(written)
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    identity = ["schema_version", "status", "task", "model", "seed", "profile", "config_hash", "git_commit"]
    assert schema["required"] == [*identity, "finished_at", "config"]


def test_the_json_schema_in_the_docs_is_the_current_one():
    printed = subprocess.run(
        [sys.executable, "-m", "lra_snn.results.schema"], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    ).stdout
    assert printed == json_schema() + "\n"
    docs = (PROJECT_ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    block = re.search(r"### JSON Schema of result\.json \(version 2\)\n.*?```json\n(.*?)```\n", docs, re.DOTALL)
    assert block is not None, "docs/results.md lacks the section 'JSON Schema of result.json (version 2)'"
    assert block[1] == printed, (
        "docs/results.md's JSON Schema differs from lra_snn/results/schema.py: replace the ```json block under "
        "'JSON Schema of result.json (version 2)' with the output of `python -m lra_snn.results.schema`"
    )


def test_finished_at_in_the_future_is_refused_beyond_the_clock_skew_allowance():
    now = time.time()
    assert new_record(fields(), finished_at=now).finished_at == pytest.approx(now, abs=1e-5)
    data = new_record(fields(), finished_at=now + CLOCK_SKEW_S - 60).to_json()
    assert parse_record(data, now=now).finished_at > now  # within the allowance
    data = new_record(fields(), finished_at=now + 3 * 86400).to_json()
    with pytest.raises(ResultFileError, match="4320 min in the future"):
        parse_record(data, now=now)


def test_unreadable_file_is_reported_by_path_and_reason(tmp_path):
    path = tmp_path / "result.json"
    path.write_text('{"schema_version": 2, "status": ')
    with pytest.raises(ResultFileError, match=f"{path}: not valid JSON"):
        read_result(path)
    assert read_result(tmp_path / "absent.json") is None


def test_results_and_leaderboards_are_written_readable_by_everyone(tmp_path):
    write_atomically(tmp_path / "a.txt", "text")
    write_result(tmp_path / "result.json", fields())
    md, csv_path = write_leaderboard("# board\n", [], tmp_path / "board")
    for path in (tmp_path / "a.txt", tmp_path / "result.json", md, csv_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def statuses(folder: Path) -> tuple[str, list[str]]:
    """(status of result.json, sorted statuses of the attempt files)."""
    attempts = sorted(json.loads(p.read_text())["status"] for p in (folder / "attempts").glob("*.json"))
    return json.loads((folder / "result.json").read_text())["status"], attempts


def test_a_completed_result_is_never_replaced_by_a_worse_outcome(tmp_path):
    path = tmp_path / "seed_1" / "result.json"
    store_result(path, fields())
    completed = path.read_text()
    for status in ("failed", "interrupted", "no_data"):
        _, written = store_result(path, fields(status=status, message=f"{status} rerun"))
        assert written.parent.name == "attempts" and written.name.endswith(f"-{status}.json")
        assert json.loads(written.read_text())["message"] == f"{status} rerun"
    assert path.read_text() == completed
    assert statuses(path.parent) == ("completed", ["failed", "interrupted", "no_data"])


def test_a_new_outcome_replaces_an_unfinished_one_which_is_kept(tmp_path):
    path = tmp_path / "seed_1" / "result.json"
    store_result(path, fields(status="interrupted", message="stopped by SIGTERM"))
    interrupted = path.read_text()
    _, written = store_result(path, fields(metrics={"test/acc": 0.75}))
    assert written == path and statuses(path.parent) == ("completed", ["interrupted"])
    (kept,) = (path.parent / "attempts").glob("*.json")
    assert kept.read_text() == interrupted  # the replaced file, unchanged
    # a second completed run (skip_completed=false) replaces the first, which is kept as an attempt
    store_result(path, fields(metrics={"test/acc": 0.8}))
    assert statuses(path.parent) == ("completed", ["completed", "interrupted"])


def test_an_unreadable_result_is_never_overwritten(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("not json")
    with pytest.raises(ResultFileError, match="not valid JSON"):
        store_result(path, fields())
    assert path.read_text() == "not json"


def test_a_record_carries_the_digest_of_its_content_and_an_edit_is_refused():
    written = new_record(fields()).to_json()
    assert written["record_digest"] == content_digest(written) and len(written["record_digest"]) == 64
    assert parse_record(json.loads(json.dumps(written))).to_json() == written  # a round trip keeps it
    edited = {**written, "metrics": {**written["metrics"], "test/acc": 0.99}}
    with pytest.raises(ResultFileError, match="its record_digest does not match its content: the file was edited"):
        parse_record(edited)
    changes = ({"seed": written["seed"] + 1}, {"model": written["model"] + "_x"}, {"config": {"edited": True}})
    for other in ({**written, **change} for change in changes):
        with pytest.raises(ResultFileError, match="record_digest does not match"):
            parse_record(other)
    older = {key: value for key, value in edited.items() if key != "record_digest"}
    assert parse_record(older).metrics["test/acc"] == 0.99  # a record written before digests is read as it is


def test_the_data_identity_is_read_back_and_checked():
    record = new_record(fields(), finished_at=0.0)
    assert record.data is not None and record.data.sources == {"/data/lra_release/listops-1000": "e" * 64}
    assert parse_record(record.to_json()).data == record.data
    assert "data" not in new_record(fields(data=None), finished_at=0.0).to_json()  # absent, as before it existed
    for bad, words in [
        ({"digest": 5, "sources": {}}, "data['digest'] is 5, expected str"),
        ({"digest": "d", "sources": {"/a": 1}}, "data['sources']"),
        ({"digest": "d", "sources": {}, "size": 3}, "size"),
    ]:
        with pytest.raises(ResultFileError, match=re.escape(words)):
            new_record(fields(data=bad), finished_at=0.0)
