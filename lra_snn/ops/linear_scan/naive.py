"""The first-order scan ``h_t = a_t * h_{t-1} + b_t`` as a plain time loop: the definition the
parallel paths of ``lra_snn.ops.linear_scan`` are tested against (docs/kernels.md, "What needs a kernel")."""

from __future__ import annotations

import torch
from torch import Tensor


def linear_scan_naive(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """``h`` (B, L, ...) along dim 1 of ``b``; ``a`` broadcasts to ``b``, ``h0`` (B, ...) or None (zero).
    Real or complex; differentiable through the loop."""
    a = a.expand_as(b) if a.dim() == b.dim() else a.reshape((1,) * (b.dim() - a.dim()) + tuple(a.shape)).expand_as(b)
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, 1)
