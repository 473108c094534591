"""Compiled CPU path of one boundary-compression iteration of the refractory LIF (SPikE-SSM, arXiv
2410.17268, as reconstructed in docs/neurons.md, section 3): the traces of an iterate and the next
iterate as one numba loop over time (``lra_snn.ops.host_compile``).

Per step, in the inputs' dtype and the naive loop's order: the next iterate
``H((excess_t - V_th (beta R'_t)) - rho Q_t)``, the reset trace ``beta R'_t`` and the refractory trace
``Q_t``, then ``R'_{t+1} = beta R'_t + s_t`` and ``Q_{t+1} = gamma Q_t + s_t``: all three outputs are
bit-identical to the naive loop's. Each (batch row, channel block) walks time in the (B, L, D) layout
with the channels innermost; ``numba.prange`` splits rows (and channel blocks) across
``torch.get_num_threads()`` threads. No autograd (the iteration runs under ``no_grad``).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.compiled_rows import parallel_kernel, run_rows


def _iteration_loop(
    excess: np.ndarray,
    spikes: np.ndarray,
    parameters: np.ndarray,
    update: np.ndarray,
    reset: np.ndarray,
    refractory: np.ndarray,
    constants: np.ndarray,
    width: int,
) -> None:
    """Fill ``update``, ``reset`` and ``refractory`` (B, L, D) from ``excess`` and the iterate ``spikes``
    (B, L, D); ``parameters`` (2, D) = (V_th, rho), ``constants`` = (beta, gamma, 0, 1)."""
    batch, length, channels = excess.shape
    blocks = -(-channels // width)
    beta, gamma, zero, one = constants[0], constants[1], constants[2], constants[3]
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        size = stop - start
        v_th, rho = parameters[0, start:stop], parameters[1, start:stop]
        reset_state = np.zeros(size, excess.dtype)
        refractory_state = np.zeros(size, excess.dtype)
        for t in range(length):
            excess_t, spikes_t = excess[row, t, start:stop], spikes[row, t, start:stop]
            update_t, reset_t, refractory_t = (
                update[row, t, start:stop],
                reset[row, t, start:stop],
                refractory[row, t, start:stop],
            )
            for i in range(size):
                reset_trace = beta * reset_state[i]
                margin = (excess_t[i] - v_th[i] * reset_trace) - rho[i] * refractory_state[i]
                update_t[i] = one if margin >= zero else zero
                reset_t[i] = reset_trace
                refractory_t[i] = refractory_state[i]
                reset_state[i] = reset_trace + spikes_t[i]
                refractory_state[i] = gamma * refractory_state[i] + spikes_t[i]


iteration_kernel = parallel_kernel(_iteration_loop)


@torch.no_grad()
def refractory_iteration_compiled(
    excess: Tensor, spikes: Tensor, v_th: Tensor, rho: Tensor, beta: float, gamma: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Next iterate, reset trace and refractory trace (B, L, D) of float32/float64 CPU tensors, ``v_th``
    and ``rho`` per channel (D,), all of one dtype."""
    excess, spikes = excess.contiguous(), spikes.contiguous()
    update, reset, refractory = (torch.empty_like(excess) for _ in range(3))
    constants = torch.tensor([beta, gamma, 0.0, 1.0], dtype=excess.dtype)
    arrays = (excess, spikes, torch.stack([v_th, rho]), update, reset, refractory, constants)
    run_rows(iteration_kernel(), arrays, like=excess)
    return update, reset, refractory
