"""Triton path of leaky integration ``h_t = decay * h_{t-1} + x_t``: the linear-scan kernel
(``lra_snn.ops.linear_scan.triton``) with the decay as a per-channel (D,) vector (docs/kernels.md,
"What needs a kernel")."""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.ops.linear_scan.triton import linear_scan_triton


def leaky_integrate_triton(x: Tensor, decay: float) -> Tensor:
    """``h`` (B, L, D) of ``x`` (B, L, D), h_0 = 0, differentiable in x."""
    return linear_scan_triton(torch.full((x.shape[2],), decay, dtype=x.dtype, device=x.device), x)
