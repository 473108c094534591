"""Compiled CPU path of the threshold scan (PRF paper, arXiv 2410.03530, decoupled reset; docs/neurons.md,
section 1): one numba loop over time forward, one in reverse time backward (``lra_snn.ops.host_compile``).

Forward, per (batch row, channel block), time outer and channels innermost (vectorised), in the
input's dtype and the naive loop's order of operations, so spikes and offsets are bit-identical to it:
the offset ``b_t`` is written, ``s_t = [e_t - b_t >= 0]``, ``b_{t+1} = decay (b_t + V_th s_t)``, with
``V_th`` and ``decay`` per channel (a scalar is broadcast).

Backward, from the saved excess and offsets (the margin ``m_t = e_t - b_t`` recomputed exactly), with
``g`` the gradient reaching the spikes and ``H'`` the surrogate slope (``lra_snn.ops.surrogate.compiled``):
``de_t = delta_t = H'(m_t) (g_t - V_th decay F_{t+1})``, ``F_t = delta_t + decay F_{t+1}``; the term in
``F`` (the spike's effect on every later margin through the offsets) only when the reset is not detached.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.compiled_rows import parallel_kernel, run_rows
from lra_snn.ops.surrogate.compiled import SURROGATE_CODES, surrogate_slope
from lra_snn.ops.threshold_scan.torch import per_channel


def _forward_loop(
    excess: np.ndarray, spikes: np.ndarray, offsets: np.ndarray, v_th: np.ndarray, decay: np.ndarray, width: int
) -> None:
    """Fill ``spikes`` and ``offsets`` (B, L, D) from ``excess`` (B, L, D); ``v_th``, ``decay`` (D,), one dtype."""
    batch, length, channels = excess.shape
    zero, one = excess.dtype.type(0), excess.dtype.type(1)
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, max((task % blocks) * width, 0)  # start >= 0 spares a wraparound check
        size = min(channels, start + width) - start
        offset = np.zeros(size, excess.dtype)
        for t in range(length):
            for i in range(size):
                previous = offset[i]
                offsets[row, t, start + i] = previous
                fired = one if excess[row, t, start + i] - previous >= zero else zero
                spikes[row, t, start + i] = fired
                offset[i] = decay[start + i] * (previous + v_th[start + i] * fired)


def _backward_loop(
    excess: np.ndarray,
    offsets: np.ndarray,
    grad_spikes: np.ndarray,
    grad_excess: np.ndarray,
    decay: np.ndarray,
    reset_gain: np.ndarray,
    code: int,
    width: int,
) -> None:
    """Fill ``grad_excess`` (B, L, D) in reverse time; ``decay`` and ``reset_gain`` (V_th decay for the
    coupled reset, else 0) per channel (D,), all in one dtype."""
    batch, length, channels = excess.shape
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, max((task % blocks) * width, 0)
        size = min(channels, start + width) - start
        carry = np.zeros(size, excess.dtype)  # F_{t+1}
        for t in range(length - 1, -1, -1):
            for i in range(size):
                slope = surrogate_slope(excess[row, t, start + i] - offsets[row, t, start + i], code)
                delta = slope * (grad_spikes[row, t, start + i] - reset_gain[start + i] * carry[i])
                carry[i] = delta + decay[start + i] * carry[i]
                grad_excess[row, t, start + i] = delta


forward_kernel = parallel_kernel(_forward_loop)
backward_kernel = parallel_kernel(_backward_loop)


class CompiledThresholdScan(torch.autograd.Function):
    """Spikes and offsets (B, L, D) of ``excess``; gradient to ``excess`` through the spikes only."""

    @staticmethod
    def forward(
        ctx, excess: Tensor, v_th: Tensor, decay: Tensor, surrogate: str, detach_reset: bool
    ) -> tuple[Tensor, Tensor]:
        excess = excess.detach().contiguous()
        spikes = dispatch.allocate(excess.shape, excess)
        offsets = dispatch.allocate(excess.shape, excess)
        run_rows(forward_kernel(), (excess, spikes, offsets, v_th, decay), like=excess)
        ctx.save_for_backward(excess, offsets, decay, torch.zeros_like(v_th) if detach_reset else v_th * decay)
        ctx.code = SURROGATE_CODES[surrogate]
        ctx.mark_non_differentiable(offsets)
        return spikes, offsets

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor, _grad_offsets: Tensor):
        excess, offsets, decay, reset_gain = ctx.saved_tensors
        grad_excess = dispatch.allocate(excess.shape, excess)
        run_rows(
            backward_kernel(),
            (excess, offsets, grad_spikes.to(excess.dtype).contiguous(), grad_excess, decay, reset_gain),
            ctx.code,
            like=excess,
        )
        return grad_excess, None, None, None, None


def threshold_scan_compiled(
    excess: Tensor, v_th: float | Tensor, decay: float | Tensor, surrogate: str = "atan", detach_reset: bool = True
) -> tuple[Tensor, Tensor]:
    """Spikes and offsets (B, L, D) from ``excess`` (B, L, D), float32 or float64 on the CPU; ``v_th``,
    ``decay`` scalars or per channel (D,)."""
    channels = excess.shape[-1]
    v_th_d, decay_d = (
        per_channel(value, excess, name).expand(channels).contiguous()
        for value, name in ((v_th, "v_th"), (decay, "decay"))
    )
    return CompiledThresholdScan.apply(excess, v_th_d, decay_d, surrogate, detach_reset)
