"""The refractory LIF as one compiled time loop from step 0, forward and backward (SPikE-SSM, arXiv
2410.17268, as reconstructed in docs/neurons.md, section 3): the fixed point ``s = F(s)`` that the
boundary-compression solver reaches, with the neuron's surrogate gradient.

Forward, per step in the inputs' dtype, the neuron's step form's operations in its order:
``u_t = beta (u_{t-1} - V_th s_{t-1}) + x_t``, ``r_t = gamma r_{t-1} + rho s_{t-1}``, margin
``(u_t - V_th) - r_t``, ``s_t = H(margin)``: spikes and margins are bit-identical to the neuron's
sequential form (its definition).

Backward, as autograd through the neuron's parallel form defines it: the margin
``u'_t - V_th - V_th R_t - rho Q_t`` (``u'`` the reset-free potential, ``R_t = sum_{i<t} beta^(t-i)
s_i``, ``Q_t = sum_{i<t} gamma^(t-1-i) s_i``) with the spikes inside ``R`` and ``Q`` detached and
``V_th``, ``rho`` differentiable, ``s = H(margin)`` with the surrogate. With ``dm_t`` the surrogate
times the upstream gradient, one pass in reverse time carries ``C_t = dm_t + beta C_{t+1}`` and
``E_t = dm_t + gamma E_{t+1}``: ``dx_t = C_t``, ``dV_th = -sum_t (dm_t + beta s_t C_{t+1})`` and
``drho = -sum_t s_t E_{t+1}`` (the sums over t of ``dm_t R_t`` and ``dm_t Q_t`` regrouped by spike), per
channel, compensated (Kahan) per batch row in the inputs' dtype and summed over rows in float64. Only
the margins are kept from the forward (the spikes are ``margin >= 0``).

Each (batch row, channel block) walks time in the (B, L, D) layout with the channels innermost;
``numba.prange`` splits rows (and channel blocks) across ``torch.get_num_threads()`` threads.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.compiled_rows import TOUCH_CHUNK, clear_rows, compensated_add, parallel_kernel, run_rows, touch_rows
from lra_snn.ops.surrogate.compiled import SURROGATE_CODES, surrogate_slope


def _forward_loop(
    x: np.ndarray,
    parameters: np.ndarray,
    spikes: np.ndarray,
    margins: np.ndarray,
    constants: np.ndarray,
    width: int,
) -> None:
    """Fill ``spikes`` and ``margins`` (B, L, D) from ``x`` (B, L, D); ``parameters`` (2, D) = (V_th,
    rho), ``constants`` = (beta, gamma, 0, 1)."""
    batch, length, channels = x.shape
    blocks = -(-channels // width)
    beta, gamma, zero, one = constants[0], constants[1], constants[2], constants[3]
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        size = stop - start
        v_th, rho = parameters[0, start:stop], parameters[1, start:stop]
        potential = np.zeros(size, x.dtype)
        refractory = np.zeros(size, x.dtype)
        fired = np.zeros(size, x.dtype)
        for t in range(length):
            x_t, spikes_t, margins_t = x[row, t, start:stop], spikes[row, t, start:stop], margins[row, t, start:stop]
            for i in range(size):
                potential[i] = beta * (potential[i] - v_th[i] * fired[i]) + x_t[i]
                refractory[i] = gamma * refractory[i] + rho[i] * fired[i]
                margin = (potential[i] - v_th[i]) - refractory[i]
                fired[i] = one if margin >= zero else zero
                margins_t[i] = margin
                spikes_t[i] = fired[i]


def _backward_loop(
    margins: np.ndarray,
    dspikes: np.ndarray,
    dx: np.ndarray,
    row_sums: np.ndarray,
    constants: np.ndarray,
    surrogate: int,
    width: int,
) -> None:
    """Fill ``dx`` (B, L, D) and ``row_sums`` (B, 2, D), each row's gradients in (V_th, rho), from the
    forward's ``margins`` and the upstream ``dspikes`` (B, L, D); ``constants`` = (beta, gamma, 0, 1).
    Time is walked backwards chunk by chunk, each chunk's rows first touched in forward order
    (``touch_rows``)."""
    batch, length, channels = margins.shape
    blocks = -(-channels // width)
    beta, gamma, zero, one = constants[0], constants[1], constants[2], constants[3]
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        size = stop - start
        reset_carry = np.zeros(size, margins.dtype)  # C_{t+1}
        refractory_carry = np.zeros(size, margins.dtype)  # E_{t+1}
        v_th_sum, v_th_lost = np.zeros(size, margins.dtype), np.zeros(size, margins.dtype)  # Kahan sums
        rho_sum, rho_lost = np.zeros(size, margins.dtype), np.zeros(size, margins.dtype)
        slope = np.zeros(size, margins.dtype)
        for chunk in range((length - 1) // TOUCH_CHUNK, -1, -1):
            first, end = chunk * TOUCH_CHUNK, min(length, (chunk + 1) * TOUCH_CHUNK)
            touch_rows(margins, row, first, end, start, stop, slope)
            touch_rows(dspikes, row, first, end, start, stop, slope)
            clear_rows(dx, row, first, end, start, stop)
            for t in range(end - 1, first - 1, -1):
                margins_t, dspikes_t = margins[row, t, start:stop], dspikes[row, t, start:stop]
                dx_t = dx[row, t, start:stop]
                for i in range(size):
                    slope[i] = dspikes_t[i] * surrogate_slope(margins_t[i], surrogate)
                for i in range(size):
                    fired = one if margins_t[i] >= zero else zero
                    compensated_add(v_th_sum, v_th_lost, i, -(slope[i] + beta * fired * reset_carry[i]))
                    compensated_add(rho_sum, rho_lost, i, -(fired * refractory_carry[i]))
                    reset_carry[i] = slope[i] + beta * reset_carry[i]
                    refractory_carry[i] = slope[i] + gamma * refractory_carry[i]
                    dx_t[i] = reset_carry[i]
        row_sums[row, 0, start:stop] = v_th_sum
        row_sums[row, 1, start:stop] = rho_sum


forward_kernel = parallel_kernel(_forward_loop)
backward_kernel = parallel_kernel(_backward_loop)


def _constants(beta: float, gamma: float, dtype: torch.dtype) -> Tensor:
    return torch.tensor([beta, gamma, 0.0, 1.0], dtype=dtype)


def _forward(x: Tensor, parameters: Tensor, beta: float, gamma: float) -> tuple[Tensor, Tensor]:
    spikes, margins = torch.empty_like(x), torch.empty_like(x)
    run_rows(forward_kernel(), (x, parameters, spikes, margins, _constants(beta, gamma, x.dtype)), like=x)
    return spikes, margins


class CompiledRefractoryLIF(torch.autograd.Function):
    """Spikes and margins (B, L, D) of the refractory LIF from ``x`` (B, L, D) and the stacked per-channel
    ``(V_th, rho)`` (2, D); differentiable in x and both parameters through the spikes."""

    @staticmethod
    def forward(ctx, x: Tensor, parameters: Tensor, beta: float, gamma: float, surrogate: str):
        spikes, margins = _forward(x.contiguous(), parameters.contiguous(), beta, gamma)
        ctx.save_for_backward(margins)
        ctx.settings = (beta, gamma, SURROGATE_CODES[surrogate])
        ctx.mark_non_differentiable(margins)
        return spikes, margins

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dspikes: Tensor, _dmargins: Tensor):
        (margins,) = ctx.saved_tensors
        beta, gamma, surrogate = ctx.settings
        dx = torch.empty_like(margins)
        row_sums = torch.zeros(margins.shape[0], 2, margins.shape[2], dtype=margins.dtype)
        arrays = (margins, dspikes.contiguous(), dx, row_sums, _constants(beta, gamma, margins.dtype))
        run_rows(backward_kernel(), arrays, surrogate, like=margins)
        return dx, row_sums.sum(0, dtype=torch.float64).to(margins.dtype), None, None, None


def refractory_lif_compiled(
    x: Tensor, v_th: Tensor, rho: Tensor, beta: float, gamma: float, surrogate: str
) -> tuple[Tensor, Tensor]:
    """Spikes and margins ``u_t - V_th - r_t`` (B, L, D) of float32/float64 CPU input currents ``x``
    (B, L, D), ``v_th`` and ``rho`` per channel (D,) in x's dtype; the spikes are differentiable in x,
    ``v_th`` and ``rho`` (surrogate ``surrogate``), the margins are not."""
    if surrogate not in SURROGATE_CODES:
        raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {tuple(SURROGATE_CODES)}")
    parameters = torch.stack([v_th, rho])
    if torch.is_grad_enabled() and (x.requires_grad or parameters.requires_grad):
        return CompiledRefractoryLIF.apply(x, parameters, float(beta), float(gamma), surrogate)
    return _forward(x.detach().contiguous(), parameters.detach(), beta, gamma)
