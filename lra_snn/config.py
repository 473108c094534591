"""OmegaConf resolvers the Hydra configs use, and the hash that names an experiment cell.

``${project_root:}`` is the repository root (so paths do not depend on the working directory);
``${cell_hash:}`` hashes every setting that changes what a run computes (data, model, task,
training length and precision, profile) and nothing machine-specific (paths, devices, workers,
logging), so a changed config becomes a new cell and seeds of one config share a cell.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# keys that do not change what a run computes
_MACHINE_KEYS = {
    "data": ("data_dir", "release_dir", "source_dir", "archives", "num_workers"),
    "trainer": ("accelerator", "devices", "strategy", "num_nodes", "enable_progress_bar",
                "log_every_n_steps", "enable_model_summary"),
}
_HASHED_SECTIONS = ("task_name", "profile_name", "data", "model", "task", "monitor", "trainer")


def cell_hash(cfg: DictConfig) -> str:
    """Short stable hash of the settings that define an experiment cell (seed excluded)."""
    content = {}
    for section in _HASHED_SECTIONS:
        value = cfg.get(section)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _MACHINE_KEYS.get(section, ())}
        content[section] = value
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:10]


def register_resolvers() -> None:
    """Register the resolvers once (safe to call repeatedly)."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("cell_hash"):
        OmegaConf.register_new_resolver("cell_hash", lambda *, _root_: cell_hash(_root_))
