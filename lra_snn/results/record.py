"""The per-run result file (``result.json``, schema 1): writing it and reading it back.

It records the resolved config, the metrics at the best validation checkpoint, wall time,
optimizer steps, parameter count, device, library versions and the git commit.
"""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from lra_snn.config import PROJECT_ROOT
from lra_snn.results.atomic import write_atomically

SCHEMA_VERSION = 1
RESULT_FILENAME = "result.json"
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
    """HEAD commit of the project, suffixed '+dirty' when tracked files changed; 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def write_result(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` (plus schema version) as JSON atomically: readers never see half a file."""
    payload = {"schema_version": SCHEMA_VERSION, "finished_at": datetime.now(timezone.utc).isoformat(), **record}
    write_atomically(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def read_result(path: Path) -> dict[str, Any] | None:
    """The result at ``path``, or None when there is none."""
    if not path.exists():
        return None
    return json.loads(path.read_text())
