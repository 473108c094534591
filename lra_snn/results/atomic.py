"""Atomic text writes: a reader sees the old file or the whole new one, never half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# what open() gives under the usual umask 022; tempfile.mkstemp alone would leave 0600 (owner only)
FILE_MODE = 0o644


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0644) through a synced temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
