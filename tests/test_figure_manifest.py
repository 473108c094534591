"""figures.json: the shipped figures are drawn from the shipped runs and bench files as they are now
(content digests: git keeps no modification times), and every kind of staleness is named."""

from __future__ import annotations

import json
from pathlib import Path

from lra_snn.cli.figure_manifest import MANIFEST_NAME, code_digests, stale, write_manifest
from lra_snn.config import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "results" / "figures" / MANIFEST_NAME


def test_the_shipped_figures_are_up_to_date():
    assert SHIPPED.is_file(), f"{SHIPPED} is missing: run `make figures`"
    problems = stale(SHIPPED)
    assert not problems, "stale figures under results/figures; run `make figures`:\n" + "\n".join(problems)


def drawing(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A runs folder, a bench folder and a figures folder with two figures drawn from them and their manifest."""
    runs, bench, out = tmp_path / "runs", tmp_path / "bench", tmp_path / "figures"
    for folder in (runs / "a", runs / "b", bench, out):
        folder.mkdir(parents=True)
    (runs / "a" / "result.json").write_text("{}")
    (runs / "b" / "result.json").write_text('{"b": 1}')
    (bench / "bench_cpu_1.json").write_text("{}")
    (bench / "notes.md").write_text("not an input")
    for name in ("energy.png", "energy.pdf", "speed.png"):
        (out / name).write_bytes(b"figure")
    figures = {
        out / "energy.png": [runs / "a" / "result.json", runs / "b" / "result.json"],
        out / "energy.pdf": [runs / "a" / "result.json", runs / "b" / "result.json"],
        out / "speed.png": [bench / "bench_cpu_1.json"],
    }
    write_manifest(out, runs, bench, figures)
    return runs, bench, out


def test_a_fresh_manifest_records_relative_inputs_and_finds_nothing_stale(tmp_path):
    _, _, out = drawing(tmp_path)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["sources"] == {"runs": "../runs", "bench": "../bench"}
    assert sorted(manifest["figures"]["energy.png"]) == ["../runs/a/result.json", "../runs/b/result.json"]
    scanned = ["../bench/bench_cpu_1.json", "../runs/a/result.json", "../runs/b/result.json"]
    assert sorted(manifest["scanned"]) == scanned  # the bench folder's other files are no input
    assert manifest["code"] == code_digests() and "lra_snn.cli.plots" in manifest["code"]
    assert stale(out / MANIFEST_NAME) == []


def test_a_changed_input_names_every_figure_drawn_from_it(tmp_path):
    runs, _, out = drawing(tmp_path)
    (runs / "b" / "result.json").write_text('{"b": 2}')
    assert stale(out / MANIFEST_NAME) == [
        "input ../runs/b/result.json changed",
        "energy.pdf: input ../runs/b/result.json changed",
        "energy.png: input ../runs/b/result.json changed",
    ]


def test_new_and_removed_inputs_are_named(tmp_path):
    runs, bench, out = drawing(tmp_path)
    (runs / "c").mkdir()
    (runs / "c" / "result.json").write_text("{}")
    (bench / "bench_cpu_1.json").unlink()
    assert stale(out / MANIFEST_NAME) == [
        "input ../bench/bench_cpu_1.json removed",
        "input ../runs/c/result.json added",
        "speed.png: input ../bench/bench_cpu_1.json removed",
    ]


def test_figures_without_an_entry_and_entries_without_a_figure_are_named(tmp_path):
    _, _, out = drawing(tmp_path)
    (out / "speed.png").unlink()
    (out / "curves").mkdir()
    (out / "curves" / "old.png").write_bytes(b"old figure")
    assert stale(out / MANIFEST_NAME) == [
        f"curves/old.png: no entry in {MANIFEST_NAME}",
        f"speed.png: listed in {MANIFEST_NAME} but missing",
    ]


def test_changed_figure_code_is_named(tmp_path):
    _, _, out = drawing(tmp_path)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["code"]["lra_snn.cli.figure_energy"] = "0" * 64
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert stale(out / MANIFEST_NAME) == ["figure code: lra_snn.cli.figure_energy changed"]
