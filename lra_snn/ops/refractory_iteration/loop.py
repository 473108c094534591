"""The refractory LIF's fixed point ``s = F(s)`` by the time loop, from a given step on (SPikE-SSM,
arXiv 2410.17268, as reconstructed in docs/neurons.md, section 3): the boundary-compression
solver's way to finish a spike train once a prefix of it is exact.

``s_t = H(excess_t - V_th R_t - rho Q_t)``, ``R_{t+1} = beta (R_t + s_t)``, ``Q_{t+1} = gamma Q_t + s_t``
from the traces ``R``, ``Q`` at the first step solved. On float32/float64 CPU tensors the loop is
compiled by numba on first use (once per dtype, cached on disk; no C compiler needed on the user's
machine), walking each batch row in (B, L, D) order with the channels innermost, in the tensors'
dtype; elsewhere (CUDA, other dtypes, no numba) it is a loop of PyTorch operations over time. Both
compute the margin as ``(excess - V_th R) - rho Q``, as ``refractory_margin`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.host_compile import compile_host_loop
from lra_snn.ops.refractory_iteration.naive import refractory_margin

_COMPILED_DTYPES = (torch.float32, torch.float64)


def _solve_rows(
    excess: np.ndarray,
    spikes: np.ndarray,
    reset: np.ndarray,
    refractory: np.ndarray,
    v_th: np.ndarray,
    rho: np.ndarray,
    constants: np.ndarray,
    start: int,
) -> None:
    """Fill ``spikes[:, start:]`` (B, L, D) in place; ``reset``, ``refractory`` (B, D) are the traces at
    ``start`` and are advanced in place; ``constants`` = (beta, gamma, 0, 1); all arrays of one dtype,
    so every operation runs in it."""
    batch, length, channels = excess.shape
    beta, gamma, zero, one = constants[0], constants[1], constants[2], constants[3]
    for b in range(batch):
        for t in range(start, length):
            for d in range(channels):
                margin = (excess[b, t, d] - v_th[d] * reset[b, d]) - rho[d] * refractory[b, d]
                fired = one if margin >= 0 else zero
                spikes[b, t, d] = fired
                reset[b, d] = beta * (reset[b, d] + fired)
                refractory[b, d] = gamma * refractory[b, d] + fired


@cache
def compiled_kernel() -> Callable[..., None] | None:
    """The numba-compiled ``_solve_rows`` (``compile_host_loop``), or None without numba."""
    return compile_host_loop(_solve_rows)


def loop_is_compiled(excess: Tensor) -> bool:
    """Whether ``refractory_loop`` runs the compiled loop for tensors like ``excess``."""
    return excess.device.type == "cpu" and excess.dtype in _COMPILED_DTYPES and compiled_kernel() is not None


@torch.no_grad()
def refractory_loop(
    start: int,
    excess: Tensor,
    spikes: Tensor,
    traces: tuple[Tensor, Tensor],
    v_th: Tensor,
    rho: Tensor,
    beta: float,
    gamma: float,
) -> Tensor:
    """``spikes`` (B, L, D) with steps ``start ..`` solved by the time loop from the reset and
    refractory traces (B, D) at step ``start``: exact when ``spikes`` is exact before ``start``
    (``start = 0``: zero traces, the whole train)."""
    solved = spikes.clone()
    reset, refractory = traces[0].clone(), traces[1].clone()
    if loop_is_compiled(excess):
        kernel = compiled_kernel()
        assert kernel is not None
        dtype = excess.dtype
        kernel(
            excess.contiguous().numpy(),
            solved.numpy(),
            reset.numpy(),
            refractory.numpy(),
            v_th.to(dtype).contiguous().numpy(),
            rho.to(dtype).contiguous().numpy(),
            torch.tensor([beta, gamma, 0.0, 1.0], dtype=dtype).numpy(),
            start,
        )
        return solved
    for t in range(start, excess.shape[1]):
        fired = (refractory_margin(excess[:, t], v_th, rho, reset, refractory) >= 0).to(excess.dtype)
        solved[:, t] = fired
        reset = beta * (reset + fired)
        refractory = gamma * refractory + fired
    return solved
