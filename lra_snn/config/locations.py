"""Where the configs and the working folders are.

Run from a checkout (or an editable install of one), ``CONF_DIR`` is the checkout's ``conf/`` and the
project root is the checkout's root, so data, results and outputs sit beside the code whatever the
working directory. Installed from a wheel, the configs are the copy packaged as ``lra_snn/conf`` and
the project root is ``$LRA_SNN_HOME`` when set, else the working directory: nothing is written into
site-packages.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "LRA_SNN_HOME"  # the working root of an installed package (data/, results/, outputs/)
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _is_checkout(root: Path) -> bool:
    """Whether ``root`` is the project's source tree (its pyproject.toml beside the Hydra root conf/)."""
    return (root / "pyproject.toml").is_file() and (root / "conf" / "train.yaml").is_file()


CHECKOUT: Path | None = _SOURCE_ROOT if _is_checkout(_SOURCE_ROOT) else None
CONF_DIR = CHECKOUT / "conf" if CHECKOUT is not None else Path(__file__).resolve().parents[1] / "conf"


def project_root() -> Path:
    """The root of data/, results/ and outputs/: the checkout, else ``$LRA_SNN_HOME``, else the working directory."""
    if CHECKOUT is not None:
        return CHECKOUT
    home = os.environ.get(HOME_VARIABLE)
    return Path(home).expanduser().resolve() if home else Path.cwd()


PROJECT_ROOT = project_root()
SHIPPED_RUNS_DIR = PROJECT_ROOT / "results" / "reference-runs"  # the shipped runs: read-only to every command
SHIPPED_MANIFEST = PROJECT_ROOT / "results" / "reference-runs.manifest.json"  # the digests of their files


def inside_shipped_runs(path: str | Path) -> bool:
    """Whether ``path`` (relative to the working directory, through any symbolic link) is the shipped runs'
    folder or lies under it."""
    shipped = Path(os.path.realpath(SHIPPED_RUNS_DIR))
    resolved = Path(os.path.realpath(path))
    return resolved == shipped or shipped in resolved.parents


def shipped_runs_refusal(what: str, path: str | Path) -> str:
    """The error for writing ``what`` (a key or an argument) at ``path`` inside the shipped runs."""
    return (
        f"{what}={path} lies inside {SHIPPED_RUNS_DIR}, the shipped runs, which no command writes to; "
        "choose another folder (your runs go to results/local by default)"
    )
