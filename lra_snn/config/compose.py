"""Where the configs and the working folders are, the OmegaConf resolvers the Hydra configs use, and
composing the train config outside a Hydra run.

Run from a checkout (or an editable install of one), ``CONF_DIR`` is the checkout's ``conf/`` and
``${project_root:}`` the checkout's root, so data, results and outputs sit beside the code whatever
the working directory. Installed from a wheel, the configs are the copy packaged as ``lra_snn/conf``
and ``${project_root:}`` is ``$LRA_SNN_HOME`` when set, else the working directory: nothing is
written into site-packages.

``${cell_hash:}`` names an experiment cell (``lra_snn.config.cell``); ``${sweep_id:}`` names a
multirun's folder by its start time and a random suffix, computed once per composed config.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from lra_snn.config.cell import cell_hash

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


def sweep_id() -> str:
    """``YYYYmmdd-HHMMSS-<6 hex>``: a multirun's start time, and a random suffix for sweeps started in one second."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def register_resolvers() -> None:
    """Register the resolvers once (safe to call repeatedly).

    ``sweep_id`` is cached: every access within one composed config (and its copies, which Hydra makes
    for each job of a sweep, in this process or pickled to another) gives the same folder.
    """
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(project_root()))
    if not OmegaConf.has_resolver("cell_hash"):
        OmegaConf.register_new_resolver("cell_hash", lambda *, _root_: cell_hash(_root_))
    if not OmegaConf.has_resolver("sweep_id"):
        OmegaConf.register_new_resolver("sweep_id", sweep_id, use_cache=True)


def compose_train(overrides: list[str]) -> DictConfig:
    """The train config composed from ``CONF_DIR`` with ``overrides`` (outside a Hydra run)."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)
