"""Configuration: where the configs are, composing them, the cell hash, the task table, what a recorded
config may instantiate, hints for mistyped override keys."""

from lra_snn.config.cell import cell_hash
from lra_snn.config.compose import compose_train, register_with_hydra
from lra_snn.config.locations import CHECKOUT, CONF_DIR, PROJECT_ROOT

__all__ = ["CHECKOUT", "CONF_DIR", "PROJECT_ROOT", "cell_hash", "compose_train", "register_with_hydra"]
