"""The shipped runs are counted only as shipped: the board checks every file under results/reference-runs
against the manifest beside it, leaves out a changed or added result and names every difference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lra_snn.cli.leaderboard import main
from lra_snn.config.locations import PROJECT_ROOT, SHIPPED_MANIFEST, SHIPPED_RUNS_DIR
from lra_snn.results.manifest import check_manifest, counted_runs, write_manifest
from lra_snn.results.render import build_leaderboard
from lra_snn.results.schema import content_digest


def test_the_committed_manifest_matches_the_shipped_runs():
    check = check_manifest(SHIPPED_RUNS_DIR, SHIPPED_MANIFEST)
    assert (check.changed, check.added, check.missing) == ((), (), ()), (
        "results/reference-runs differs from results/reference-runs.manifest.json: restore the runs, or run "
        f"make reference-manifest if they were replaced on purpose: {check}"
    )


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped ListOps s4d runs standing in for results/reference-runs, with its manifest."""
    folder = tmp_path / "results" / "reference-runs"
    source = SHIPPED_RUNS_DIR / "mini" / "listops" / "s4d"
    shutil.copytree(source, folder / "mini" / "listops" / "s4d")
    monkeypatch.setattr("lra_snn.config.locations.PROJECT_ROOT", tmp_path)
    monkeypatch.setattr("lra_snn.config.locations.SHIPPED_RUNS_DIR", folder)
    monkeypatch.setattr("lra_snn.config.locations.SHIPPED_MANIFEST", tmp_path / "results" / "manifest.json")
    write_manifest(folder, tmp_path / "results" / "manifest.json")
    return folder


def test_changed_added_and_missing_files_are_named_and_never_counted(shipped):
    runs, notes = counted_runs(shipped)
    assert sorted(run.seed for run in runs) == [1, 2, 3] and notes == []
    seeds = {run.seed: run.path for run in runs}
    # seed 1 edited (its record digest rewritten, so only the manifest can tell), seed 2's curves deleted,
    # a seed 4 added by copying seed 3
    edited = json.loads(seeds[1].read_text())
    edited["metrics"]["test/acc"] = 0.99
    edited["record_digest"] = content_digest(edited)
    seeds[1].write_text(json.dumps(edited))
    (seeds[2].parent / "metrics.csv").unlink()
    added = seeds[3].parent.parent / "seed_4"
    shutil.copytree(seeds[3].parent, added)
    record = json.loads((added / "result.json").read_text())
    record["seed"] = record["config"]["seed"] = 4
    record["record_digest"] = content_digest(record)
    (added / "result.json").write_text(json.dumps(record))

    runs, notes = counted_runs(shipped)
    assert sorted(run.seed for run in runs) == [2, 3]
    rel = Path("results/reference-runs/mini/listops/s4d") / seeds[1].parent.parent.name
    assert notes == [
        f"`{rel / 'seed_1/result.json'}` differs from the file shipped (its digest in manifest.json): not counted; "
        f"restore it with `git checkout -- {rel / 'seed_1/result.json'}`",
        f"`{rel / 'seed_4/metrics.csv'}` is not among the shipped runs (not in manifest.json): not counted; your "
        "own runs belong in results/local",
        f"`{rel / 'seed_4/result.json'}` is not among the shipped runs (not in manifest.json): not counted; your "
        "own runs belong in results/local",
        f"`{rel / 'seed_2/metrics.csv'}` is in manifest.json but gone: restore it with "
        f"`git checkout -- {rel / 'seed_2/metrics.csv'}`",
    ]
    markdown, rows = build_leaderboard(shipped)
    (row,) = rows
    assert row["seeds"] == "2;3" and "differs from the file shipped" in markdown


def test_a_manifest_that_cannot_be_read_counts_no_shipped_run(shipped, tmp_path):
    (tmp_path / "results" / "manifest.json").write_text("{ broken")
    runs, notes = counted_runs(shipped)
    assert runs == [] and "manifest.json cannot be read" in notes[-1] and "no shipped run is counted" in notes[-1]


def test_write_manifest_records_every_shipped_file(shipped, tmp_path, capsys):
    (shipped / "mini" / "listops" / "s4d" / "note.txt").write_text("added on purpose")
    assert main(["--write-manifest"]) == 0
    assert "recorded the digests of 7 files" in capsys.readouterr().out
    files = json.loads((tmp_path / "results" / "manifest.json").read_text())["files"]
    assert "mini/listops/s4d/note.txt" in files and len(files) == 7
    assert counted_runs(shipped)[1] == []


def test_the_manifest_lies_outside_the_read_only_folder():
    assert SHIPPED_MANIFEST.parent == SHIPPED_RUNS_DIR.parent and PROJECT_ROOT in SHIPPED_MANIFEST.parents


def test_the_manifest_is_sorted_indented_json(tmp_path):
    folder = tmp_path / "runs"
    (folder / "b").mkdir(parents=True)
    (folder / "b" / "x.json").write_text("{}")
    (folder / "a.txt").write_text("a")
    assert write_manifest(folder, tmp_path / "m.json") == 2
    text = (tmp_path / "m.json").read_text()
    files = '"a.txt": "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"'
    assert text.startswith('{\n "about": "SHA-256 of every file under results/reference-runs') and files in text
    assert text.index('"a.txt"') < text.index('"b/x.json"') and text.endswith("}\n")


@pytest.mark.parametrize("content", ['{"about": "x"}', '{"files": [1]}', '{"files": {"a": 1}}', "not json"])
def test_a_damaged_manifest_is_named_with_the_way_back(tmp_path, content):
    from lra_snn.results.manifest import ManifestError, read_manifest

    manifest = tmp_path / "m.json"
    manifest.write_text(content)
    with pytest.raises(ManifestError, match=f"{manifest}.*restore it from git"):
        read_manifest(manifest)


def test_shipped_runs_outside_the_project_are_named_by_their_full_path(shipped, tmp_path, monkeypatch):
    monkeypatch.setattr("lra_snn.config.locations.PROJECT_ROOT", tmp_path / "elsewhere")
    (shipped / "extra.json").write_text("{}")
    _, notes = counted_runs(shipped)
    assert notes == [
        f"`{shipped / 'extra.json'}` is not among the shipped runs (not in manifest.json): not counted; your own "
        "runs belong in results/local"
    ]


def test_an_unreadable_manifest_says_what_failed_and_how_to_write_it_again(tmp_path):
    from lra_snn.results.manifest import ManifestError, read_manifest

    manifest = tmp_path / "m.json"
    manifest.write_text("not json")
    with pytest.raises(ManifestError) as error:
        read_manifest(manifest)
    assert "cannot be read (JSONDecodeError: " in str(error.value)
    assert str(error.value).endswith(
        "restore it from git, or write it again with make reference-manifest if the shipped runs were replaced "
        "on purpose"
    )


def test_notes_from_reading_the_shipped_runs_are_kept_beside_the_manifest_notes(shipped):
    broken = shipped / "mini" / "listops" / "s4d"
    seed = sorted(broken.rglob("seed_1"))[0]
    (seed / "result.json").write_text("{ not json")
    _, notes = counted_runs(shipped)
    assert any(note.startswith("skipped `") and "not valid JSON" in note for note in notes)
    assert any("differs from the file shipped" in note for note in notes)
