"""Writing a run's record (``lra_snn.results.schema``) without losing or hiding an earlier one.

``code_version`` names the code a run used: a hash of the package source and the configs only, so
a result file written into the working tree never marks later runs as made with other code.

A seed folder holds ``result.json``, the record that counts, and ``attempts/``, every other record
the cell produced. ``store_result`` never replaces a completed result with an outcome that is not
completed: a failed, interrupted or no-data rerun of a completed cell goes to
``attempts/<finished_at>-<status>.json``. Any other new outcome becomes ``result.json`` and the one it
replaces is copied unchanged into ``attempts/`` first, so a reader always finds a ``result.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from lra_snn.config import CHECKOUT, CONF_DIR
from lra_snn.results.atomic import write_atomically
from lra_snn.results.schema import ATTEMPTS_DIRNAME, ResultFileError, ResultRecord, new_record, read_record

# what a run's code is: the package source and the configs (relative to the project root)
CODE_GLOBS = ("lra_snn/**/*.py", "conf/**/*.yaml")
_LIBRARIES = ("torch", "lightning", "torchmetrics", "hydra-core", "numpy", "datasets", "triton")


def library_versions() -> dict[str, str]:
    """Python and library versions (absent libraries are listed as 'not installed')."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str:
    """HEAD commit of the project, suffixed '+dirty' when tracked files changed; 'unknown' outside git
    (an installed package: the repository of the working directory, if any, is not the code's)."""
    if CHECKOUT is None:
        return "unknown"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=CHECKOUT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=CHECKOUT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _code_files(root: Path | None) -> dict[str, Path]:
    """Relative name -> file of ``CODE_GLOBS`` under ``root``; with no root, the running code: the checkout's,
    or an installed package's own modules and its packaged configs named as in a checkout (``conf/...``)."""
    if root is None and CHECKOUT is not None:
        root = CHECKOUT
    if root is not None:
        return {p.relative_to(root).as_posix(): p for g in CODE_GLOBS for p in root.glob(g) if p.is_file()}
    package_parent = Path(__file__).resolve().parents[2]
    modules = {p.relative_to(package_parent).as_posix(): p for p in package_parent.glob(CODE_GLOBS[0])}
    configs = {f"conf/{p.relative_to(CONF_DIR).as_posix()}": p for p in CONF_DIR.rglob("*.yaml")}
    return {**modules, **configs}


def code_version(root: Path | None = None) -> str:
    """``src-`` and 16 hex digits of a sha256 over ``CODE_GLOBS`` under ``root`` (each file's relative path and bytes);
    ``root`` None: the running code (the same version for a checkout and the wheel built from it).

    Results, data, docs and tests do not enter it: only a change to the code or configs a run executes
    gives its seeds another version (the board pools seeds of one version only).
    """
    files = _code_files(root)
    digest = hashlib.sha256()
    for name in sorted(files, key=PurePosixPath):  # by path components, as the recorded versions were made
        digest.update(name.encode() + b"\0")
        digest.update(files[name].read_bytes() + b"\0")
    return "src-" + digest.hexdigest()[:16]


def _text(record: ResultRecord) -> str:
    return json.dumps(record.to_json(), indent=2, sort_keys=True, default=str) + "\n"


def write_result(path: Path, fields: Mapping[str, Any]) -> ResultRecord:
    """Check ``fields`` as a current-version record finished now and write it atomically to ``path``."""
    record = new_record(fields)
    write_atomically(path, _text(record))
    return record


def read_result(path: Path) -> ResultRecord | None:
    """The record at ``path``, or None when there is none; ResultFileError naming the file when it is unusable."""
    if not path.exists():
        return None
    try:
        return read_record(path)
    except ResultFileError as err:
        raise ResultFileError(f"{path}: {err}") from err


def attempt_path(result_path: Path, record: ResultRecord) -> Path:
    """``attempts/<finished_at, UTC>-<status>.json`` beside ``result_path``; a numbered name if that exists."""
    stamp = datetime.fromtimestamp(record.finished_at, timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = result_path.parent / ATTEMPTS_DIRNAME
    candidate = folder / f"{stamp}-{record.status}.json"
    number = 1
    while candidate.exists():
        number += 1
        candidate = folder / f"{stamp}-{record.status}-{number}.json"
    return candidate


def _copy_atomically(source: Path, target: Path) -> None:
    """Copy ``source`` (bytes, mode and times) to ``target`` through a temporary file and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        shutil.copy2(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def store_result(path: Path, fields: Mapping[str, Any]) -> tuple[ResultRecord, Path]:
    """Record a run's outcome for the seed folder of ``path`` (``result.json``); return it and the file written.

    A completed ``result.json`` stays when the new outcome is not completed (that one goes to
    ``attempts/``); otherwise the new outcome replaces it, the old file kept under ``attempts/``.
    An unreadable ``result.json`` is never replaced: ResultFileError names it.
    """
    record = new_record(fields)
    existing = read_result(path)
    if existing is not None and existing.status == "completed" and record.status != "completed":
        target = attempt_path(path, record)
        write_atomically(target, _text(record))
        return record, target
    if existing is not None:
        _copy_atomically(path, attempt_path(path, existing))
    write_atomically(path, _text(record))
    return record, path
