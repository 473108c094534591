"""One process per experiment cell: an exclusive lock on ``<run_dir>/cell.lock`` (``filelock``) while the cell runs.

A second launch of a running cell is refused at once (it does not wait): ``CellLockedError`` names
the lock file and the process holding it (pid, host, start time, written into the lock file). The
lock is ``flock`` on the file, which the kernel releases when the holder exits, however it exits, so a
killed run never leaves a stale lock; the file itself stays. On a shared file system the lock holds
across machines where the file system supports ``flock`` (NFSv4, Lustre with ``-o flock``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_FILENAME = "cell.lock"


class CellLockedError(RuntimeError):
    """The cell is being run by another process; the message names the lock file and that process."""


@contextmanager
def cell_lock(run_dir: Path) -> Iterator[Path]:
    """Hold the lock of the cell whose run folder is ``run_dir`` for the ``with`` block; yields the lock file."""
    if run_dir.exists() and not run_dir.is_dir():
        raise CellLockedError(f"{run_dir}, the cell's run folder, is a file; move it away to run this cell")
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILENAME
    if path.is_dir():
        raise CellLockedError(f"{path}, the cell's lock file, is a folder; remove it (rmdir {path}) to run this cell")
    lock = FileLock(path, timeout=0, fallback_to_soft=False)
    try:
        lock.acquire()
    except Timeout:
        holder = path.read_text(encoding="utf-8").strip() or "a process that has not written its id yet"
        raise CellLockedError(
            f"this cell is already running: {path} is locked by {holder}. A cell runs in one process at a "
            "time; wait for that run to end (a relaunch then resumes or skips it), or stop it"
        ) from None
    try:
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        path.write_text(f"pid {os.getpid()} on {socket.gethostname()} since {started}\n", encoding="utf-8")
        yield path
    finally:
        path.write_text("", encoding="utf-8")
        lock.release()
