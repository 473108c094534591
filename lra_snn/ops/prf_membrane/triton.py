"""Triton path of the PRF membrane (arXiv 2410.03530; docs/kernels.md, "What needs a kernel"): the
complex recurrence ``z_t = A z_{t-1} + Delta x_t`` itself, on the complex-scan kernel
(``lra_snn.ops.complex_scan.triton``); gradients reach ``log_Delta`` and ``theta`` through A and Delta."""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.ops.complex_scan.triton import complex_scan_triton
from lra_snn.ops.prf_membrane.naive import prf_dynamics


def prf_membrane_triton(x: Tensor, log_delta: Tensor, theta: Tensor, tau: float) -> Tensor:
    """``Re z`` (B, L, D) of real float32/float64 inputs ``x`` (B, L, D), differentiable in x, log_Delta and theta."""
    delta, real_a, imag_a = prf_dynamics(log_delta, theta, tau)
    drive = torch.complex(delta * x, torch.zeros_like(x))
    return complex_scan_triton(torch.complex(real_a, imag_a), drive).real
