"""Leaky integration ``h_t = decay * h_{t-1} + x_t`` (h_0 = 0) as a plain time loop: the reset-free
potential of the decoupled-reset LIF (PRF paper, arXiv 2410.03530; docs/neurons.md, section 1),
the definition the parallel paths are tested against."""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.ops.linear_scan.naive import linear_scan_naive


def leaky_integrate_naive(x: Tensor, decay: float) -> Tensor:
    """``h`` (B, L, D) of ``x`` (B, L, D): the first-order scan's loop with one constant decay."""
    return linear_scan_naive(torch.tensor(decay, dtype=x.dtype, device=x.device), x)
