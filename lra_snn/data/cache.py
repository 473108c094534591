"""Folders of preprocessed data keyed by every preprocessing setting (data.md, "Caching and downloads").

A folder lives at ``<root>/cache/<task>/<hash>``, the hash being a short sha256 of the settings as
sorted JSON, so a changed setting gets a new folder. A folder only ever appears under its final name
complete: it is built in a temporary sibling, ``meta.json`` (the settings) is written last, every
file is fsynced, then the sibling is renamed into place. A folder without ``meta.json`` is a
leftover of an interrupted build and is rebuilt, never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lra_snn.data.errors import CacheMismatchError

META_FILE = "meta.json"
HASH_CHARS = 16


def canonical_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as they read back from JSON (tuples become lists), so stored and requested compare equal."""
    try:
        return json.loads(json.dumps(settings, sort_keys=True))
    except TypeError as error:
        raise TypeError(
            f"cache settings must be JSON values (str, int, float, bool, None, list, dict): {error}"
        ) from None


def settings_hash(settings: dict[str, Any]) -> str:
    """Short, stable hash of ``settings``: sha256 of their sorted, compact JSON."""
    text = json.dumps(canonical_settings(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def cache_dir(root: str | Path, task: str, settings: dict[str, Any]) -> Path:
    """Where the cache of ``task`` built with ``settings`` lives: ``<root>/cache/<task>/<hash>``.

    ``root`` is the data directory (e.g. ``<repo>/data``).
    """
    return Path(root) / "cache" / task / settings_hash(settings)


def is_complete(directory: str | Path) -> bool:
    """Whether ``directory`` was fully built (its completion marker ``meta.json`` exists)."""
    return (Path(directory) / META_FILE).is_file()


def read_settings(directory: str | Path) -> dict[str, Any]:
    """The settings a complete folder was built with."""
    return json.loads((Path(directory) / META_FILE).read_text(encoding="utf-8"))["settings"]


def check_settings(directory: str | Path, settings: dict[str, Any]) -> None:
    """Raise ``CacheMismatchError`` naming every key whose stored value differs from ``settings``."""
    stored = read_settings(directory)
    wanted = canonical_settings(settings)
    differences = [
        f"{key}: stored {stored.get(key, '<absent>')!r}, requested {wanted.get(key, '<absent>')!r}"
        for key in sorted(set(stored) | set(wanted))
        if stored.get(key, "<absent>") != wanted.get(key, "<absent>")
    ]
    if differences:
        raise CacheMismatchError(directory, differences)


def ensure_built(
    directory: str | Path, settings: dict[str, Any], write_contents: Callable[[Path], None]
) -> Path:
    """Return ``directory``, building it first with ``write_contents(folder)`` unless it is complete.

    A complete folder must hold ``settings`` (else ``CacheMismatchError``); an incomplete one
    (no ``meta.json``) is discarded and rebuilt.
    """
    directory = Path(directory)
    if is_complete(directory):
        check_settings(directory, settings)
        return directory
    return _build_atomically(directory, settings, write_contents)


def _build_atomically(directory: Path, settings: dict[str, Any], write_contents: Callable[[Path], None]) -> Path:
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        write_contents(staging)
        (staging / META_FILE).write_text(
            json.dumps({"settings": canonical_settings(settings)}, indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        _fsync_tree(staging)
        if directory.exists() and not is_complete(directory):
            shutil.rmtree(directory)  # leftover of an interrupted build
        _move_into_place(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    check_settings(directory, settings)
    return directory


def _move_into_place(staging: Path, directory: Path) -> None:
    """Rename ``staging`` to ``directory``; if a concurrent build finished first, keep that one."""
    try:
        os.replace(staging, directory)
    except OSError:
        if not is_complete(directory):
            raise
        shutil.rmtree(staging, ignore_errors=True)
    _fsync_directory(directory.parent)


def _fsync_tree(folder: Path) -> None:
    """Flush every file below ``folder``, then the folders themselves, to disk."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        _fsync_directory(path)
    _fsync_directory(folder)


def _fsync_directory(folder: Path) -> None:
    """Flush a folder's entries (where the platform can open folders; a no-op elsewhere)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
