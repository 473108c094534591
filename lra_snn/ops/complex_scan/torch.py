"""PyTorch path of the complex first-order scan ``z_t = a_t z_{t-1} + b_t``: the doubling scan of
``lra_snn.ops.linear_scan.torch``, whose backward conjugates the decay and state as PyTorch's
complex autograd expects (docs/kernels.md, "Scan kernels in Triton")."""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops.linear_scan.torch import linear_scan_torch


def complex_scan_torch(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """``z`` (B, L, D) from complex ``a`` ((B, L, D) or (D,)), ``b`` (B, L, D) and ``h0`` ((B, D) or None)."""
    return linear_scan_torch(a, b, h0)
