"""The manifest of the shipped runs: the SHA-256 of every file under ``results/reference-runs``, kept beside
that folder (``results/reference-runs.manifest.json``), so the board counts only the runs as shipped.

``write_manifest`` records the folder as it is (``make reference-manifest``, after the shipped runs are
replaced); ``check_manifest`` compares the folder with it: a file whose content changed, a file that is not
in the manifest (added) and a file of the manifest that is gone. The board leaves the changed and added
result files out and names every difference in its notes (``lra_snn.results.render``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lra_snn.config import locations
from lra_snn.results.atomic import write_atomically
from lra_snn.results.runs import Run, load_runs

ABOUT = (  # the manifest's first key, for a reader of the file
    "SHA-256 of every file under results/reference-runs, the shipped runs; the board counts only files that "
    "match. Written by make reference-manifest."
)


class ManifestError(ValueError):
    """The manifest cannot be read; the message names the file and how to write it again."""


@dataclass(frozen=True)
class ManifestCheck:
    """How a folder differs from its manifest: paths relative to the folder, sorted."""

    changed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    def refused(self) -> set[str]:
        """The files the board must not count: changed or added."""
        return {*self.changed, *self.added}


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_digests(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder`` (sorted by path)."""
    return {
        path.relative_to(folder).as_posix(): file_sha256(path) for path in sorted(folder.rglob("*")) if path.is_file()
    }


def compare_digests(recorded: dict[str, str], found: dict[str, str]) -> ManifestCheck:
    """The names whose digest changed, the names only ``found`` has (added) and only ``recorded`` has (missing)."""
    return ManifestCheck(
        changed=tuple(sorted(name for name in found if name in recorded and recorded[name] != found[name])),
        added=tuple(sorted(name for name in found if name not in recorded)),
        missing=tuple(sorted(name for name in recorded if name not in found)),
    )


def write_manifest(folder: Path, manifest: Path) -> int:
    """Record the digests of ``folder``'s files in ``manifest``; the number of files."""
    files = folder_digests(folder)
    write_atomically(manifest, json.dumps({"about": ABOUT, "files": files}, indent=1, sort_keys=True) + "\n")
    return len(files)


def read_manifest(manifest: Path) -> dict[str, str]:
    """The recorded digests; ManifestError naming the file when it is absent or unreadable."""
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ManifestError(
            f"{manifest} cannot be read ({type(error).__name__}: {error}); restore it from git, or write it "
            "again with make reference-manifest if the shipped runs were replaced on purpose"
        ) from None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise ManifestError(f"{manifest}: 'files' is not a mapping of paths to digests; restore it from git")
    return files


def check_manifest(folder: Path, manifest: Path) -> ManifestCheck:
    """How ``folder`` differs from ``manifest`` (ManifestError when the manifest cannot be read)."""
    return compare_digests(read_manifest(manifest), folder_digests(folder))


def counted_runs(folder: Path) -> tuple[list[Run], list[str]]:
    """``load_runs(folder)`` and its notes; for the shipped runs (``folder`` inside ``SHIPPED_RUNS_DIR``) only the
    files that match the manifest are counted, and every difference from it is a note."""
    runs, notes = load_runs(folder)
    shipped, manifest = locations.SHIPPED_RUNS_DIR, locations.SHIPPED_MANIFEST
    if not locations.inside_shipped_runs(folder):
        return runs, notes
    try:
        check = check_manifest(shipped, manifest)
    except ManifestError as error:
        return [], [*notes, f"{error}; no shipped run is counted until it is"]
    refused = {(shipped / path).resolve() for path in check.refused()}
    shown = shipped.relative_to(locations.PROJECT_ROOT) if shipped.is_relative_to(locations.PROJECT_ROOT) else shipped
    notes += [
        f"`{shown / path}` differs from the file shipped (its digest in {manifest.name}): not counted; restore it "
        f"with `git checkout -- {shown / path}`"
        for path in check.changed
    ]
    notes += [
        f"`{shown / path}` is not among the shipped runs (not in {manifest.name}): not counted; your own runs "
        "belong in results/local"
        for path in check.added
    ]
    notes += [
        f"`{shown / path}` is in {manifest.name} but gone: restore it with `git checkout -- {shown / path}`"
        for path in check.missing
    ]
    return [run for run in runs if run.path.resolve() not in refused], notes
