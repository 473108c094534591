"""AdamW parameter groups and the warmup-cosine schedule of the S4 code base (docs/recipes.md).

Groups come from the tags parameters carry (``lra_snn.training.params``): "dynamics" (SSM A, dt and
neuron dynamics) at their own lr with weight decay 0; "no_decay" (biases, norms, embeddings)
at the global lr with weight decay 0; everything else at the global lr and weight decay.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lra_snn.training.params import group_of, tag_no_decay


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


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to each group's lr over ``warmup_steps``, then cosine decay to ``min_ratio``."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
