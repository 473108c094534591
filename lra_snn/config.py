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
# nested keys that do not change what a run computes either: the neuron kernels' backend (Triton
# and PyTorch compute the same function, to float rounding; lra_snn.kernel_parity checks it)
_MACHINE_PATHS = {"model": (("encoder", "layer", "neuron", "backend"),)}
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
            for path in _MACHINE_PATHS.get(section, ()):
                value = _without(value, path)
        content[section] = value
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _without(tree: dict, path: tuple[str, ...]) -> dict:
    """``tree`` without the key at ``path`` (unchanged when the path is absent)."""
    head, *rest = path
    if head not in tree:
        return tree
    if not rest:
        return {k: v for k, v in tree.items() if k != head}
    if not isinstance(tree[head], dict):
        return tree
    return {**tree, head: _without(tree[head], tuple(rest))}


def register_resolvers() -> None:
    """Register the resolvers once (safe to call repeatedly)."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("cell_hash"):
        OmegaConf.register_new_resolver("cell_hash", lambda *, _root_: cell_hash(_root_))
