"""PyTorch path of the decoupled-reset LIF (PRF paper, arXiv 2410.03530; docs/neurons.md, section 1):
the reset-free potential by chunked leaky integration (``lra_snn.ops.leaky_integrate.torch``), then
the threshold scan's host loop and spikes (``lra_snn.ops.threshold_scan.torch``)."""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.leaky_integrate.torch import leaky_integrate_torch
from lra_snn.ops.threshold_scan.torch import threshold_scan_torch


def lif_torch(
    x: Tensor, beta: float, v_th: float, surrogate: str = "atan", detach_reset: bool = True
) -> tuple[Tensor, Tensor]:
    """Spikes (B, L, D) and spike counts (B, D, no gradient) of ``x`` (B, L, D)."""
    excess = leaky_integrate_torch(x, beta) - v_th
    spikes, _ = threshold_scan_torch(excess, v_th, beta, surrogate, detach_reset)
    return spikes, spikes.detach().sum(1, dtype=dispatch.compute_dtype(x.dtype))
