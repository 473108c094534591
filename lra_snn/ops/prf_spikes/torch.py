"""PyTorch path of the PRF spikes (arXiv 2410.03530; docs/neurons.md, section 2): ``Re z`` by the
membrane's FFT convolution (``lra_snn.ops.prf_membrane.torch``), then the spike function."""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops.prf_membrane.torch import prf_membrane_torch
from lra_snn.ops.surrogate import spike


def prf_spikes_torch(
    x: Tensor, log_delta: Tensor, theta: Tensor, tau: float, v_th: float, surrogate: str = "atan"
) -> Tensor:
    """Spikes (B, L, D) of real inputs ``x`` (B, L, D), differentiable in x, log_Delta and theta."""
    return spike(prf_membrane_torch(x, log_delta, theta, tau) - v_th, surrogate)
