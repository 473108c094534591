"""What Hydra needs from us (the resolvers, the generated zoo models), and composing the train config outside a run.

The resolvers and the zoo models made for new neurons (``lra_snn.config.zoo``) are registered together.
``${project_root:}`` is ``lra_snn.config.locations.project_root``; ``${cell_hash:}`` names an experiment
cell (``lra_snn.config.cell``); ``${group_choices:<group>}`` lists a config group's
options (``lra_snn.config.choices``, for the help text); ``${sweep_id:}`` names a
multirun's folder by its start time and a random suffix, computed once per composed config.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from lra_snn.config.cell import cell_hash
from lra_snn.config.choices import group_choices
from lra_snn.config.locations import CONF_DIR, project_root
from lra_snn.config.zoo import register_neuron_models


def sweep_id() -> str:
    """``YYYYmmdd-HHMMSS-<6 hex>``: a multirun's start time, and a random suffix for sweeps started in one second."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def register_with_hydra() -> None:
    """Register the resolvers and the zoo models made for new neurons (``lra_snn.config.zoo``) once (safe to
    call repeatedly; every entry point calls it before Hydra composes).

    ``sweep_id`` is cached: every access within one composed config (and its copies, which Hydra makes
    for each job of a sweep, in this process or pickled to another) gives the same folder.
    """
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(project_root()))
    if not OmegaConf.has_resolver("cell_hash"):
        OmegaConf.register_new_resolver("cell_hash", lambda *, _root_: cell_hash(_root_))
    if not OmegaConf.has_resolver("group_choices"):
        OmegaConf.register_new_resolver("group_choices", group_choices)
    if not OmegaConf.has_resolver("sweep_id"):
        OmegaConf.register_new_resolver("sweep_id", sweep_id, use_cache=True)
    register_neuron_models()


def compose_train(overrides: list[str]) -> DictConfig:
    """The train config composed from ``CONF_DIR`` with ``overrides`` (outside a Hydra run)."""
    register_with_hydra()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)
