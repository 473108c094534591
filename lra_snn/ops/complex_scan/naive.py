"""The complex first-order scan ``z_t = a_t z_{t-1} + b_t`` as a plain time loop (PRF's membrane,
arXiv 2410.03530; docs/neurons.md, section 2): the definition the complex scan is tested against."""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops.linear_scan.naive import linear_scan_naive


def complex_scan_naive(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """``z`` (B, L, D) from complex ``a`` ((B, L, D) or (D,)), ``b`` (B, L, D) and ``h0`` ((B, D) or None):
    the real scan's loop, which holds in complex arithmetic as it stands."""
    return linear_scan_naive(a, b, h0)
