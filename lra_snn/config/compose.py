"""OmegaConf resolvers the Hydra configs use, and composing the train config outside a Hydra run.

``${project_root:}`` is the repository root (so paths do not depend on the working directory);
``${cell_hash:}`` names an experiment cell (``lra_snn.config.cell``).
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from lra_snn.config.cell import cell_hash

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"


def register_resolvers() -> None:
    """Register the resolvers once (safe to call repeatedly)."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("cell_hash"):
        OmegaConf.register_new_resolver("cell_hash", lambda *, _root_: cell_hash(_root_))


def compose_train(overrides: list[str]) -> DictConfig:
    """The train config composed from ``conf/`` with ``overrides`` (outside a Hydra run)."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)
