"""Triton path of the PRF spikes (arXiv 2410.03530; docs/kernels.md, "What needs a kernel"): ``Re z`` by
the membrane's complex-scan kernel (``lra_snn.ops.prf_membrane.triton``), then the spike function."""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops.prf_membrane.triton import prf_membrane_triton
from lra_snn.ops.surrogate import spike


def prf_spikes_triton(
    x: Tensor, log_delta: Tensor, theta: Tensor, tau: float, v_th: float, surrogate: str = "atan"
) -> Tensor:
    """Spikes (B, L, D) of real float32/float64 inputs ``x`` (B, L, D), differentiable in x, log_Delta and theta."""
    return spike(prf_membrane_triton(x, log_delta, theta, tau) - v_th, surrogate)
