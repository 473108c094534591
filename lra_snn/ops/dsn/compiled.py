"""Compiled CPU path of the DSN (Huang et al., "Parallel Training in Spiking Neural Networks", arXiv
2602.01133; docs/neurons.md, section 5): the membrane ``h_t = alpha_t h_{t-1} + (1 - alpha_t) x_t`` and
its integer or binary spikes as numba loops over time, forward and backward
(``lra_snn.ops.host_compile``).

The decay is computed by PyTorch before the loop, with ``decay_and_gain``'s operations: ``logsigmoid``
(``aten.log_sigmoid_forward``, which also returns ``exp(-|a|)`` for the backward), ``/ tau``, ``exp``
and ``expm1`` (the loop negates it, exactly). These are PyTorch's vectorised transcendental functions,
whose last bits a compiled loop cannot reproduce, so they cost four elementwise passes over (B, L, D)
before the loop. The loop then computes ``alpha_t * h + (1 - alpha_t) * x_t`` and the spikes
``clip(floor(h + 1/2), 0, N)`` or ``H(h - 1/2)`` in the inputs' dtype, as the naive loop does: membrane
and spikes are bit-identical to it.

Backward, one pass in reverse time: ``dh_t`` from the spike surrogate (straight-through inside
``[0, N]``, or ATan of ``h - 1/2``), ``g_t = dh_t + alpha_{t+1} g_{t+1}``, ``dx_t = g_t (1 - alpha_t)``,
``d log alpha_t = g_t h_{t-1} alpha_t - g_t x_t (expm1 + 1)`` (autograd's ``exp`` and ``expm1``
backwards) and ``da_t = d log alpha_t / tau * sigmoid(-a_t)``, ``sigmoid(-a)`` from ``exp(-|a|)`` as
PyTorch's ``logsigmoid`` backward forms it. Each (batch row, channel block) walks time in the (B, L, D)
layout with the channels innermost; ``numba.prange`` splits rows (and channel blocks) across
``torch.get_num_threads()`` threads.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.compiled_rows import TOUCH_CHUNK, clear_rows, parallel_kernel, run_rows, touch_rows
from lra_snn.ops.surrogate.compiled import SURROGATE_CODES, surrogate_slope

ATAN = SURROGATE_CODES["atan"]  # the binary spikes' surrogate


def _forward_loop(
    alpha: np.ndarray,
    expm1: np.ndarray,
    x: np.ndarray,
    spikes: np.ndarray,
    h: np.ndarray,
    constants: np.ndarray,
    binary: bool,
    keep_membrane: bool,
    width: int,
) -> None:
    """Fill ``spikes`` (B, L, D), and the membrane ``h`` (B, L, D) when ``keep_membrane``, from
    ``alpha``, ``expm1`` = ``expm1(log alpha)`` and ``x`` (B, L, D); ``constants`` = (N, 1/2, 0, 1)."""
    batch, length, channels = x.shape
    blocks = -(-channels // width)
    levels, half, zero, one = constants[0], constants[1], constants[2], constants[3]
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        size = stop - start
        state = np.zeros(size, x.dtype)
        for t in range(length):
            alpha_t, expm1_t, x_t = alpha[row, t, start:stop], expm1[row, t, start:stop], x[row, t, start:stop]
            for i in range(size):
                state[i] = alpha_t[i] * state[i] + (-expm1_t[i]) * x_t[i]
            spikes_t = spikes[row, t, start:stop]
            if binary:
                for i in range(size):
                    spikes_t[i] = one if state[i] - half >= zero else zero
            else:
                for i in range(size):
                    spikes_t[i] = min(max(np.floor(state[i] + half), zero), levels)
            if keep_membrane:
                h_t = h[row, t, start:stop]
                for i in range(size):
                    h_t[i] = state[i]


def _backward_loop(
    logits: np.ndarray,
    decay_buffer: np.ndarray,
    alpha: np.ndarray,
    expm1: np.ndarray,
    x: np.ndarray,
    h: np.ndarray,
    dspikes: np.ndarray,
    dlogits: np.ndarray,
    dx: np.ndarray,
    constants: np.ndarray,
    binary: bool,
    width: int,
) -> None:
    """Fill ``dlogits`` and ``dx`` (B, L, D) from the upstream ``dspikes``, the forward's ``h`` and the
    decay's tensors (``decay_buffer`` = ``exp(-|a|)``); ``constants`` = (N, 1/2, 0, 1, tau). Time is
    walked backwards chunk by chunk, each chunk's rows first touched in forward order (``touch_rows``)."""
    batch, length, channels = x.shape
    blocks = -(-channels // width)
    levels, half, zero, one, tau = constants[0], constants[1], constants[2], constants[3], constants[4]
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        size = stop - start
        carry = np.zeros(size, x.dtype)  # alpha_{t+1} g_{t+1}
        local = np.zeros(size, x.dtype)
        initial = np.zeros(size, x.dtype)  # h before the first step
        for chunk in range((length - 1) // TOUCH_CHUNK, -1, -1):
            first, end = chunk * TOUCH_CHUNK, min(length, (chunk + 1) * TOUCH_CHUNK)
            for source in (logits, decay_buffer, alpha, expm1, x, h, dspikes):
                touch_rows(source, row, first, end, start, stop, local)
            clear_rows(dlogits, row, first, end, start, stop)
            clear_rows(dx, row, first, end, start, stop)
            for t in range(end - 1, first - 1, -1):
                h_t, dspikes_t = h[row, t, start:stop], dspikes[row, t, start:stop]
                if binary:
                    for i in range(size):
                        local[i] = dspikes_t[i] * surrogate_slope(h_t[i] - half, ATAN)
                else:
                    for i in range(size):
                        local[i] = dspikes_t[i] if zero <= h_t[i] <= levels else zero
                alpha_t, expm1_t, x_t = alpha[row, t, start:stop], expm1[row, t, start:stop], x[row, t, start:stop]
                logits_t, buffer_t = logits[row, t, start:stop], decay_buffer[row, t, start:stop]
                previous = h[row, t - 1, start:stop] if t > 0 else initial
                dx_t, dlogits_t = dx[row, t, start:stop], dlogits[row, t, start:stop]
                for i in range(size):
                    grad = local[i] + carry[i]
                    carry[i] = alpha_t[i] * grad
                    dx_t[i] = grad * (-expm1_t[i])
                    dlog_alpha = (grad * previous[i]) * alpha_t[i] - (grad * x_t[i]) * (expm1_t[i] + one)
                    ratio = buffer_t[i] / (one + buffer_t[i])
                    dlogits_t[i] = (dlog_alpha / tau) * ((one - ratio) if logits_t[i] < zero else ratio)


forward_kernel = parallel_kernel(_forward_loop)
backward_kernel = parallel_kernel(_backward_loop)


def decay(logits: Tensor, tau: float) -> tuple[Tensor, Tensor, Tensor]:
    """``alpha``, ``expm1(log alpha)`` (= ``-(1 - alpha)``) and ``exp(-|a|)``, contiguous, by
    ``decay_and_gain``'s PyTorch operations on ``logits`` as given (its layout decides which elements
    PyTorch's vectorised body and scalar tail compute, so the values are the naive loop's)."""
    log_alpha, decay_buffer = torch.ops.aten.log_sigmoid_forward(logits)
    log_alpha.div_(tau)
    alpha = torch.exp(log_alpha)
    expm1 = torch.expm1(log_alpha, out=log_alpha)
    return alpha.contiguous(), expm1.contiguous(), decay_buffer.contiguous()


def _forward(
    alpha: Tensor, expm1: Tensor, x: Tensor, n_levels: int, binary: bool, keep_membrane: bool
) -> tuple[Tensor, Tensor]:
    spikes = torch.empty_like(x)
    h = torch.empty_like(x) if keep_membrane else x.new_empty(1, 1, 1)
    constants = torch.tensor([n_levels, 0.5, 0.0, 1.0], dtype=x.dtype)
    run_rows(forward_kernel(), (alpha, expm1, x, spikes, h, constants), binary, keep_membrane, like=x)
    return spikes, h


class CompiledDSN(torch.autograd.Function):
    """DSN spikes (B, L, D) from conv logits and inputs (B, L, D), differentiable in both."""

    @staticmethod
    def forward(ctx, logits: Tensor, x: Tensor, tau: float, n_levels: int, binary: bool) -> Tensor:
        alpha, expm1, decay_buffer = decay(logits, tau)
        logits, x = logits.contiguous(), x.contiguous()
        spikes, h = _forward(alpha, expm1, x, n_levels, binary, keep_membrane=True)
        ctx.save_for_backward(logits, decay_buffer, alpha, expm1, x, h)
        ctx.settings = (tau, n_levels, binary)
        return spikes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dspikes: Tensor):
        logits, decay_buffer, alpha, expm1, x, h = ctx.saved_tensors
        tau, n_levels, binary = ctx.settings
        dlogits, dx = torch.empty_like(x), torch.empty_like(x)
        constants = torch.tensor([n_levels, 0.5, 0.0, 1.0, tau], dtype=x.dtype)
        arrays = (logits, decay_buffer, alpha, expm1, x, h, dspikes.contiguous(), dlogits, dx, constants)
        run_rows(backward_kernel(), arrays, binary, like=x)
        return dlogits, dx, None, None, None


def dsn_compiled(logits: Tensor, x: Tensor, tau: float, n_levels: int, binary: bool) -> Tensor:
    """Spikes (B, L, D) from the decay logits and inputs (both (B, L, D), one float32/float64 dtype, on
    the CPU), differentiable in both."""
    if torch.is_grad_enabled() and (logits.requires_grad or x.requires_grad):
        return CompiledDSN.apply(logits, x, float(tau), int(n_levels), bool(binary))
    alpha, expm1, _ = decay(logits.detach(), tau)
    return _forward(alpha, expm1, x.detach().contiguous(), n_levels, binary, keep_membrane=False)[0]
