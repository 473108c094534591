"""Optimizer tags carried by parameters.

A module tags a tensor when it creates it (``tag(p, "dynamics")``); the optimizer builder
reads the tags to form AdamW groups (docs/recipes.md: SSM tensors and neuron dynamics at their own
lr with weight decay 0; biases, norms and embeddings without weight decay). No name matching.
"""

from __future__ import annotations

from torch import nn

GROUPS = ("default", "no_decay", "dynamics")
_ATTR = "_lra_group"


def tag(param: nn.Parameter, group: str) -> nn.Parameter:
    """Mark ``param`` as belonging to optimizer group ``group`` and return it."""
    if group not in GROUPS:
        raise ValueError(f"unknown optimizer group {group!r}; choose one of {GROUPS}")
    setattr(param, _ATTR, group)
    return param


def group_of(param: nn.Parameter) -> str:
    """The group a parameter was tagged with ("default" when untagged)."""
    return getattr(param, _ATTR, "default")


_NO_DECAY_MODULES = (nn.Embedding, nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


def tag_no_decay(model: nn.Module) -> None:
    """Tag norm weights, embeddings and biases "no_decay" unless they already carry a tag."""
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if hasattr(p, _ATTR):
                continue
            if isinstance(module, _NO_DECAY_MODULES) or name == "bias":
                tag(p, "no_decay")
