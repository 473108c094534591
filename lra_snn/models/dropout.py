"""Dropout tied across time: one mask per (sequence, channel), the same at every step.

The S4 code base's ``DropoutNd`` with ``tie=True``, which SpikingSSMs' model uses for its blocks and
residual connections (arXiv 2408.14909; their released ``SpikingSSM``): a dropped channel is dropped
for the whole sequence, scaled by ``1 / (1 - p)`` as ``nn.Dropout``. Identity outside training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TiedDropout(nn.Module):
    """``x * m / (1 - p)`` on (B, L, D) with ``m ~ Bernoulli(1 - p)`` of shape (B, 1, D) in training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty(x.shape[0], 1, x.shape[-1], device=x.device, dtype=x.dtype).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


def dropout(p: float, tied: bool) -> nn.Module:
    """``TiedDropout(p)`` when ``tied`` (one mask over time), else ``nn.Dropout(p)`` (per element)."""
    return TiedDropout(p) if tied else nn.Dropout(p)
