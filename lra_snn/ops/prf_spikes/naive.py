"""PRF spikes as a plain time loop (Parallel Resonate-and-Fire, arXiv 2410.03530; docs/neurons.md,
section 2): the definition the other paths are tested against, ``s_t = H(Re z_t - V_th)`` of the naive
membrane loop (``lra_snn.ops.prf_membrane.naive``) with a surrogate gradient."""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops.prf_membrane.naive import prf_membrane_naive
from lra_snn.ops.surrogate import spike


def prf_spikes_naive(
    x: Tensor, log_delta: Tensor, theta: Tensor, tau: float, v_th: float, surrogate: str = "atan"
) -> Tensor:
    """Spikes (B, L, D) of real inputs ``x`` (B, L, D), differentiable in x, log_Delta and theta."""
    return spike(prf_membrane_naive(x, log_delta, theta, tau) - v_th, surrogate)
