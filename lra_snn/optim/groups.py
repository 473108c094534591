"""AdamW parameter groups from the tags parameters carry (the S4 code base's convention, docs/recipes.md).

A module tags a tensor when it creates it (``tag(p, "dynamics")``) and ``param_groups`` reads the
tags: "dynamics" (SSM A, dt and neuron dynamics) at their own lr with weight decay 0; "no_decay"
(biases, norms, embeddings) at the global lr with weight decay 0; everything else at the global lr
and weight decay. No name matching.
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


def param_groups(model: nn.Module, lr: float, weight_decay: float, dynamics_lr: float) -> list[dict]:
    """AdamW groups from parameter tags; empty groups are left out."""
    tag_no_decay(model)
    settings = {
        "default": {"lr": lr, "weight_decay": weight_decay},
        "no_decay": {"lr": lr, "weight_decay": 0.0},
        "dynamics": {"lr": dynamics_lr, "weight_decay": 0.0},
    }
    params: dict[str, list[nn.Parameter]] = {name: [] for name in settings}
    for p in model.parameters():
        if p.requires_grad:
            params[group_of(p)].append(p)
    return [{"name": name, "params": ps, **settings[name]} for name, ps in params.items() if ps]
