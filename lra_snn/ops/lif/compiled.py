"""Compiled CPU path of the decoupled-reset LIF (PRF paper, arXiv 2410.03530; docs/neurons.md, section 1):
one numba loop over time forward, one in reverse time backward (``lra_snn.ops.host_compile``).

Forward, per (batch row, channel block), time outer and channels innermost (vectorised), in the
input's dtype and the naive loop's order of operations, so the spikes are bit-identical to it:
reset-free potential ``u'_t = beta u'_{t-1} + x_t``, margin ``m_t = (u'_t - V_th) - b_t``,
``s_t = [m_t >= 0]``, offset ``b_{t+1} = beta (b_t + V_th s_t)``, and the spike count. The margins are
kept for the backward only when a gradient is needed.

``lif_steps_compiled`` runs a chunk of a stream from the step form's state (potential ``u`` and spikes
``s`` of the step before) in the step form's own operations, ``u_t = beta (u_{t-1} - V_th s_{t-1}) +
x_t``, ``s_t = [u_t - V_th >= 0]``, so its spikes and state are those of the neuron's ``step`` called
step by step (streaming inference, no autograd).

Backward: with ``g`` the gradient reaching the spikes and ``H'`` the surrogate slope
(``lra_snn.ops.surrogate.compiled``), ``delta_t = H'(m_t) (g_t - V_th beta F_{t+1})`` (the second term
only when the reset is not detached: the spike's effect on every later margin through the offsets),
``F_t = delta_t + beta F_{t+1}``; then ``dx_t = F_t``, since ``u'`` decays with the same ``beta`` as
the offsets.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.compiled_rows import parallel_kernel, run_rows
from lra_snn.ops.surrogate.compiled import SURROGATE_CODES, surrogate_slope


def _forward_loop(
    x: np.ndarray,
    spikes: np.ndarray,
    margins: np.ndarray,
    counts: np.ndarray,
    constants: np.ndarray,
    keep_margins: bool,
    width: int,
) -> None:
    """Fill ``spikes`` (B, L, D), ``counts`` (B, D) and, when ``keep_margins``, ``margins`` (B, L, D)
    from ``x`` (B, L, D); ``constants`` = (beta, V_th), all in one dtype."""
    batch, length, channels = x.shape
    beta, v_th = constants[0], constants[1]
    zero, one = x.dtype.type(0), x.dtype.type(1)
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, max((task % blocks) * width, 0)  # start >= 0 spares a wraparound check
        size = min(channels, start + width) - start
        potential = np.zeros(size, x.dtype)
        offset = np.zeros(size, x.dtype)
        count = np.zeros(size, x.dtype)
        for t in range(length):
            for i in range(size):
                reset_free = beta * potential[i] + x[row, t, start + i]
                potential[i] = reset_free
                margin = (reset_free - v_th) - offset[i]
                fired = one if margin >= zero else zero
                spikes[row, t, start + i] = fired
                count[i] += fired
                offset[i] = beta * (offset[i] + v_th * fired)
                if keep_margins:
                    margins[row, t, start + i] = margin
        for i in range(size):
            counts[row, start + i] = count[i]


def _backward_loop(
    margins: np.ndarray, grad_spikes: np.ndarray, grad_x: np.ndarray, constants: np.ndarray, code: int, width: int
) -> None:
    """Fill ``grad_x`` (B, L, D) from ``margins`` and ``grad_spikes`` (B, L, D) in reverse time;
    ``constants`` = (beta, V_th beta for the coupled reset, else 0), all in one dtype."""
    batch, length, channels = margins.shape
    beta, reset_gain = constants[0], constants[1]
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, max((task % blocks) * width, 0)  # start >= 0 spares a wraparound check
        size = min(channels, start + width) - start
        carry = np.zeros(size, margins.dtype)  # F_{t+1}
        for t in range(length - 1, -1, -1):
            for i in range(size):
                slope = surrogate_slope(margins[row, t, start + i], code)
                delta = slope * (grad_spikes[row, t, start + i] - reset_gain * carry[i])
                total = delta + beta * carry[i]
                carry[i] = total
                grad_x[row, t, start + i] = total


def _step_loop(
    x: np.ndarray, potential: np.ndarray, fired: np.ndarray, spikes: np.ndarray, constants: np.ndarray, width: int
) -> None:
    """Fill ``spikes`` (B, T, D) from ``x`` (B, T, D) by the step form, from and into the state
    ``potential`` and ``fired`` (B, D) (updated in place to the last step's); ``constants`` = (beta, V_th)."""
    batch, length, channels = x.shape
    beta, v_th = constants[0], constants[1]
    zero, one = x.dtype.type(0), x.dtype.type(1)
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, max((task % blocks) * width, 0)  # start >= 0 spares a wraparound check
        size = min(channels, start + width) - start
        u = np.empty(size, x.dtype)
        s = np.empty(size, x.dtype)
        for i in range(size):
            u[i], s[i] = potential[row, start + i], fired[row, start + i]
        for t in range(length):
            for i in range(size):
                u[i] = beta * (u[i] - v_th * s[i]) + x[row, t, start + i]
                s[i] = one if u[i] - v_th >= zero else zero
                spikes[row, t, start + i] = s[i]
        for i in range(size):
            potential[row, start + i], fired[row, start + i] = u[i], s[i]


forward_kernel = parallel_kernel(_forward_loop)
backward_kernel = parallel_kernel(_backward_loop)
step_kernel = parallel_kernel(_step_loop)


class CompiledLIF(torch.autograd.Function):
    """Spikes (B, L, D) and spike counts (B, D) of the LIF driven by ``x``; gradient to ``x`` only (the
    margins kept for it when ``keep_margins``)."""

    @staticmethod
    def forward(
        ctx, x: Tensor, beta: float, v_th: float, surrogate: str, detach_reset: bool, keep_margins: bool
    ) -> tuple[Tensor, Tensor]:
        x = x.detach().contiguous()
        batch, _, channels = x.shape
        spikes = dispatch.allocate(x.shape, x)
        margins = dispatch.allocate(x.shape if keep_margins else (1, 1, 1), x)
        counts = dispatch.allocate((batch, channels), x)
        constants = torch.tensor([beta, v_th], dtype=x.dtype)
        run_rows(forward_kernel(), (x, spikes, margins, counts, constants), keep_margins, like=x)
        ctx.save_for_backward(margins)
        ctx.constants = torch.tensor([beta, 0.0 if detach_reset else v_th * beta], dtype=x.dtype)
        ctx.code = SURROGATE_CODES[surrogate]
        ctx.mark_non_differentiable(counts)
        return spikes, counts

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor, _grad_counts: Tensor):
        (margins,) = ctx.saved_tensors
        grad_x = dispatch.allocate(margins.shape, margins)
        run_rows(
            backward_kernel(),
            (margins, grad_spikes.to(margins.dtype).contiguous(), grad_x, ctx.constants),
            ctx.code,
            like=margins,
        )
        return grad_x, None, None, None, None, None


def lif_compiled(
    x: Tensor, beta: float, v_th: float, surrogate: str = "atan", detach_reset: bool = True
) -> tuple[Tensor, Tensor]:
    """Spikes (B, L, D) and spike counts (B, D, no gradient) of ``x`` (B, L, D), float32 or float64 on the CPU."""
    keep_margins = torch.is_grad_enabled() and x.requires_grad  # the backward's input, kept only when it will run
    return CompiledLIF.apply(x, float(beta), float(v_th), surrogate, detach_reset, keep_margins)


def lif_steps_compiled(
    x: Tensor, potential: Tensor, spikes: Tensor, beta: float, v_th: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Spikes (B, T, D) of a chunk ``x`` (B, T, D) of a stream whose state after the step before is
    ``potential`` and ``spikes`` (B, D), and the state after the chunk (potential, spikes), without
    autograd; float32 or float64 on the CPU."""
    x = x.detach().contiguous()
    potential = potential.detach().to(x.dtype, copy=True).contiguous()
    fired = spikes.detach().to(x.dtype, copy=True).contiguous()
    out = dispatch.allocate(x.shape, x)
    run_rows(step_kernel(), (x, potential, fired, out, torch.tensor([beta, v_th], dtype=x.dtype)), like=x)
    return out, potential, fired
