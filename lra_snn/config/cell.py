"""The hash that names an experiment cell (``${cell_hash:}`` in the configs).

It covers every setting that changes what a run computes (data, model, task, training length and
precision, profile) and nothing machine-specific (paths, devices, workers, logging), so a changed
config becomes a new cell and seeds of one config share a cell.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

# keys that do not change what a run computes, as paths inside their section: where data and
# outputs live, devices and logging, the neuron kernels' backend (Triton and PyTorch compute
# the same function, to float rounding; lra_snn.cli.kernel_parity checks it) and the refractory
# neuron's solver (every solver ends on the same verified fixed point)
_MACHINE_PATHS = {
    "data": (("data_dir",), ("release_dir",), ("source_dir",), ("archives",), ("num_workers",), ("num_proc",)),
    "trainer": tuple(
        (key,)
        for key in (
            "accelerator",
            "devices",
            "strategy",
            "num_nodes",
            "enable_progress_bar",
            "log_every_n_steps",
            "enable_model_summary",
            "compile",  # torch.compile: the same function, fused differently (to float rounding)
        )
    ),
    "model": (("encoder", "layer", "neuron", "backend"), ("encoder", "layer", "neuron", "solver")),
}
HASHED_SECTIONS = ("task_name", "profile_name", "data", "model", "task", "monitor", "trainer")
# keys hashed only when they differ from the value that means "not used": a config that gains such a key
# at that value keeps its cells (accumulating gradients over 1 batch is plain training)
_NEUTRAL_VALUES = {"trainer": {"accumulate_grad_batches": 1}}


def cell_content(config: Mapping[str, Any]) -> dict[str, Any]:
    """What defines the experiment cell of a resolved, plain ``config``: the hashed sections (None where
    absent), without the machine-specific keys and without keys at their neutral value.

    The cell hash and the board's identity of a run (``lra_snn.results.variants``) are both this."""
    content: dict[str, Any] = {}
    for section in HASHED_SECTIONS:
        value = config.get(section)
        if isinstance(value, dict):
            for path in _MACHINE_PATHS.get(section, ()):
                value = _without(value, path)
            neutral = _NEUTRAL_VALUES.get(section, {})
            value = {k: v for k, v in value.items() if k not in neutral or v != neutral[k]}
        content[section] = value
    return content


def cell_hash(cfg: DictConfig | Mapping[str, Any]) -> str:
    """Short stable hash of the settings that define an experiment cell (seed excluded). Of a composed config
    only the hashed sections are resolved (``paths.cell`` holds this hash)."""
    sections = {section: cfg.get(section) for section in HASHED_SECTIONS}
    plain = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for k, v in sections.items()}
    content = cell_content(plain)
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
