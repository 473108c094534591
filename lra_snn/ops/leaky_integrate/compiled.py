"""Compiled CPU path of leaky integration ``h_t = decay * h_{t-1} + x_t`` (the reset-free potential of
the LIF neurons; PRF paper, arXiv 2410.03530, docs/neurons.md, section 1): the real scan's numba loops
(``lra_snn.ops.linear_scan.compiled``) with the constant decay given to every channel, in the input's
dtype and the naive loop's order of operations (bit-identical), its backward the reverse-time loop
``dx_t = dh_t + decay dx_{t+1}``."""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.ops.linear_scan.compiled import linear_scan_compiled


def leaky_integrate_compiled(x: Tensor, decay: float) -> Tensor:
    """``h`` (B, L, D) of ``x`` (B, L, D), float32 or float64 on the CPU, h_0 = 0, differentiable in x."""
    return linear_scan_compiled(torch.full((x.shape[-1],), decay, dtype=x.dtype), x)
