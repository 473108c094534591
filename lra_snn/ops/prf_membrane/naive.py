"""The PRF membrane as a plain time loop (Parallel Resonate-and-Fire, arXiv 2410.03530; docs/neurons.md,
section 2): the definition the parallel paths are tested against, and the per-channel dynamics they
share with the neuron.

Per channel ``Delta = exp(log_Delta)`` and ``A = exp(Delta * (-1/tau + i*theta))``; the complex
membrane ``z_t = A z_{t-1} + Delta x_t`` from ``z_0 = 0``, of which the neuron reads ``Re z``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def prf_dynamics(log_delta: Tensor, theta: Tensor, tau: float) -> tuple[Tensor, Tensor, Tensor]:
    """``Delta``, ``Re A = exp(-Delta/tau) cos(Delta theta)`` and ``Im A``, per channel (D,)."""
    delta = log_delta.exp()
    angle = delta * theta
    magnitude = torch.exp(-delta / tau)
    return delta, magnitude * torch.cos(angle), magnitude * torch.sin(angle)


def prf_membrane_naive(x: Tensor, log_delta: Tensor, theta: Tensor, tau: float) -> Tensor:
    """``Re z`` (B, L, D) of real inputs ``x`` (B, L, D), differentiable in x, log_Delta and theta."""
    delta, real_a, imag_a = prf_dynamics(log_delta, theta, tau)
    rotation = torch.complex(real_a, imag_a)
    z = torch.zeros(x.shape[0], x.shape[2], dtype=rotation.dtype, device=x.device)
    membrane = []
    for x_t in x.unbind(1):
        z = rotation * z + delta * x_t
        membrane.append(z.real)
    return torch.stack(membrane, 1)
