"""``figures.json``: what every figure in a folder was drawn from, so that a stale figure can be told by content.

Git keeps no modification times, so staleness is judged by SHA-256 digests. ``lra_snn.cli.plots``
writes the manifest beside the figures it draws:

- ``code``: the digest of each module of the figure code (``lra_snn/cli/plots.py`` and
  ``lra_snn/cli/figure_*.py``), by module name;
- ``sources``: the runs folder and the bench folder it read, relative to the manifest's folder;
- ``scanned``: the digest of every file under the runs folder and of every bench JSON in the bench
  folder, so a run or bench file added or removed since is seen even though no figure drew it yet;
- ``figures``: for each figure file (PNG and PDF), the digest of each input it was drawn from (the
  ``result.json`` and ``metrics.csv`` of its runs, the bench JSON files), paths relative to the
  manifest's folder.

``stale`` recomputes every digest and names each figure whose inputs changed, each figure file
without an entry, each entry without its file, new or removed input files and changed figure code.
Nothing here needs matplotlib.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lra_snn.results.manifest import compare_digests, file_sha256

MANIFEST_NAME = "figures.json"
FIGURE_SUFFIXES = (".png", ".pdf")
BENCH_GLOB = "bench_*.json"
CODE_DIR = Path(__file__).resolve().parent


def code_digests() -> dict[str, str]:
    """Module name -> digest of each module of the figure code."""
    files = [CODE_DIR / "plots.py", *sorted(CODE_DIR.glob("figure_*.py"))]
    return {f"lra_snn.cli.{path.stem}": file_sha256(path) for path in files}


def relative(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` (with ``..`` where needed), in POSIX form."""
    return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()


def scanned_files(results: Path, bench: Path) -> list[Path]:
    """Every file under the runs folder and every bench JSON in the bench folder (sorted)."""
    runs = sorted(path for path in results.rglob("*") if path.is_file()) if results.is_dir() else []
    return runs + (sorted(bench.glob(BENCH_GLOB)) if bench.is_dir() else [])


def _digests(paths: list[Path], folder: Path) -> dict[str, str]:
    """Path relative to ``folder`` -> digest, for each of ``paths``."""
    return {relative(path, folder): file_sha256(path) for path in paths}


def write_manifest(out: Path, results: Path, bench: Path, figures: dict[Path, list[Path]]) -> Path:
    """Write ``out/figures.json`` for ``figures`` (each figure file -> the input files it was drawn from)."""
    manifest: dict[str, Any] = {
        "code": code_digests(),
        "sources": {"runs": relative(results, out), "bench": relative(bench, out)},
        "scanned": _digests(scanned_files(results, bench), out),
        "figures": {relative(figure, out): _digests(sorted(set(inputs)), out) for figure, inputs in figures.items()},
    }
    path = out / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _changes(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """``<name> changed`` / ``added`` / ``removed`` for each difference between two digest maps, by name."""
    check = compare_digests(recorded, current)
    words = {**dict.fromkeys(check.changed, "changed"), **dict.fromkeys(check.added, "added")}
    words.update(dict.fromkeys(check.missing, "removed"))
    return [f"{name} {words[name]}" for name in sorted(words)]


def stale(manifest_path: Path) -> list[str]:
    """Every reason the figures beside ``manifest_path`` are not what their inputs and code would draw now."""
    folder = manifest_path.parent
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems = [f"figure code: {change}" for change in _changes(manifest["code"], code_digests())]
    sources = manifest["sources"]
    scanned = _digests(scanned_files(folder / sources["runs"], folder / sources["bench"]), folder)
    problems += [f"input {change}" for change in _changes(manifest["scanned"], scanned)]
    figures: dict[str, dict[str, str]] = manifest["figures"]
    on_disk = {relative(p, folder) for p in folder.rglob("*") if p.suffix in FIGURE_SUFFIXES}
    problems += [f"{name}: no entry in {MANIFEST_NAME}" for name in sorted(on_disk - set(figures))]
    problems += [f"{name}: listed in {MANIFEST_NAME} but missing" for name in sorted(set(figures) - on_disk)]
    for name, inputs in sorted(figures.items()):
        current = {path: file_sha256(folder / path) for path in inputs if (folder / path).is_file()}
        problems += [f"{name}: input {change}" for change in _changes(inputs, current)]
    return problems
