"""PyTorch path of the DSN (arXiv 2602.01133; docs/neurons.md, section 5): the decay from the
logits, one first-order scan with per-step decay (``lra_snn.ops.linear_scan.torch``), the spikes."""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops.dsn.naive import decay_and_gain, fire
from lra_snn.ops.linear_scan.torch import linear_scan_torch


def dsn_torch(logits: Tensor, x: Tensor, tau: float, n_levels: int, binary: bool) -> Tensor:
    """Spikes (B, L, D) from the decay logits and inputs (both (B, L, D)), differentiable in both."""
    alpha, gain = decay_and_gain(logits, tau)
    return fire(linear_scan_torch(alpha, gain * x), n_levels, binary)
