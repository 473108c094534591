"""Configuration: composing the Hydra configs, the cell hash, hints for mistyped override keys."""

from lra_snn.config.cell import cell_hash
from lra_snn.config.compose import CHECKOUT, CONF_DIR, PROJECT_ROOT, compose_train, register_resolvers

__all__ = ["CHECKOUT", "CONF_DIR", "PROJECT_ROOT", "cell_hash", "compose_train", "register_resolvers"]
