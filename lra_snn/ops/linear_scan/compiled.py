"""Compiled CPU path of the real first-order scan ``h_t = a_t h_{t-1} + b_t`` (docs/kernels.md, "What
needs a kernel"): numba loops over time, forward and backward (``lra_snn.ops.host_compile``).

Each (batch row, channel block) walks time in the (B, L, D) layout with the channels innermost, so the
compiler vectorises over channels; ``numba.prange`` splits the rows (and channel blocks, when there
are fewer rows than threads; ``lra_snn.ops.compiled_rows.channel_block``) across
``torch.get_num_threads()`` threads. The forward computes
``a_t * h_{t-1} + b_t`` in the inputs' dtype, the naive loop's operations in its order: the states
are bit-identical. The backward is one pass in reverse time, ``g_t = dy_t + a_{t+1} g_{t+1}``,
``db_t = g_t``, ``da_t = g_t h_{t-1}`` (summed over batch and time for a per-channel decay),
``dh0 = a_1 g_1``. The decay is per step (B, L, D) or per channel (D,).
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.compiled_rows import parallel_kernel, run_rows


def _forward_loop(a: np.ndarray, b: np.ndarray, h0: np.ndarray, h: np.ndarray, per_step: bool, width: int) -> None:
    """Fill ``h`` (B, L, D) from ``a`` ((B, L, D) per step, else (1, 1, D)), ``b`` (B, L, D), ``h0`` (B, D)."""
    batch, length, channels = b.shape
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, max((task % blocks) * width, 0)  # start >= 0 spares a wraparound check
        size = min(channels, start + width) - start
        decay_row = row if per_step else 0
        state = np.empty(size, b.dtype)
        for i in range(size):
            state[i] = h0[row, start + i]
        for t in range(length):
            step = t if per_step else 0
            for i in range(size):
                value = a[decay_row, step, start + i] * state[i] + b[row, t, start + i]
                state[i] = value
                h[row, t, start + i] = value


def _backward_loop(
    a: np.ndarray,
    h0: np.ndarray,
    h: np.ndarray,
    dy: np.ndarray,
    db: np.ndarray,
    da: np.ndarray,
    dh0: np.ndarray,
    per_step: bool,
    want_da: bool,
    width: int,
) -> None:
    """Fill ``db`` (B, L, D), ``dh0`` (B, D) and, when ``want_da``, ``da`` ((B, L, D) per step, else
    (B, 1, D): each row's sum over time) by the reverse-time loop ``g_t = dy_t + a_{t+1} g_{t+1}``."""
    batch, length, channels = dy.shape
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, max((task % blocks) * width, 0)
        size = min(channels, start + width) - start
        decay_row = row if per_step else 0
        carry = np.zeros(size, dy.dtype)  # a_{t+1} g_{t+1}
        decay_sum = np.zeros(size, dy.dtype)  # sum over time of g_t h_{t-1}, for a per-channel decay
        for t in range(length - 1, -1, -1):
            step = t if per_step else 0
            for i in range(size):
                grad = dy[row, t, start + i] + carry[i]
                db[row, t, start + i] = grad
                carry[i] = a[decay_row, step, start + i] * grad
                if want_da:
                    previous = h[row, t - 1, start + i] if t > 0 else h0[row, start + i]
                    if per_step:
                        da[row, t, start + i] = grad * previous
                    else:
                        decay_sum[i] += grad * previous
        for i in range(size):
            dh0[row, start + i] = carry[i]
            if want_da and not per_step:
                da[row, 0, start + i] = decay_sum[i]


forward_kernel = parallel_kernel(_forward_loop)
backward_kernel = parallel_kernel(_backward_loop)


def scan_arguments(a: Tensor, b: Tensor, h0: Tensor | None) -> tuple[Tensor, Tensor, bool]:
    """The loops' decay ((B, L, D) per step, else (1, 1, D)), initial state (``h0`` or zeros (B, D)) and
    whether the decay is per step, from a scan's ``a`` ((B, L, D) or (D,)), ``b`` (B, L, D) and ``h0``."""
    decay = a if a.dim() == 3 else a.view(1, 1, -1)
    initial = b.new_zeros((b.shape[0], b.shape[2])) if h0 is None else h0
    return decay, initial, a.dim() == 3


def scan_forward(kernel: Callable[..., None], a: Tensor, b: Tensor, h0: Tensor, per_step: bool) -> Tensor:
    """The states ``h`` (B, L, D, ...) that the compiled forward loop ``kernel`` computes from ``a``,
    ``b`` and ``h0`` (contiguous, laid out as ``_forward_loop`` takes them, the complex scan's with a last
    axis of real and imaginary parts)."""
    h = dispatch.allocate(b.shape, b)
    run_rows(kernel, (a, b, h0, h), per_step, like=b)
    return h


def scan_backward(
    kernel: Callable[..., None], a: Tensor, h0: Tensor, h: Tensor, dy: Tensor, per_step: bool, want_da: bool
) -> tuple[Tensor | None, Tensor, Tensor]:
    """The gradients in (``a``, ``b``, ``h0``) that the compiled backward loop ``kernel`` computes from the
    forward's ``a``, ``h0``, ``h`` (B, L, D, ...) and the upstream ``dy`` (contiguous, ``h``'s dtype);
    the decay's gradient summed over the batch for a per-channel decay, None unless ``want_da``."""
    batch, length, channels, *parts = h.shape
    db = dispatch.allocate(h.shape, h)
    da = dispatch.allocate((batch, length if per_step else 1, channels, *parts) if want_da else (1, 1, 1, *parts), h)
    dh0 = dispatch.allocate(h0.shape, h)
    run_rows(kernel, (a, h0, h, dy, db, da, dh0), per_step, want_da, like=h)
    decay_grad = (da if per_step else da.sum(0, keepdim=True)) if want_da else None
    return decay_grad, db, dh0


class CompiledLinearScan(torch.autograd.Function):
    """``h`` (B, L, D) of ``a`` ((B, L, D) when ``per_step``, else (1, 1, D)), ``b`` (B, L, D) and ``h0`` (B, D)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor, per_step: bool) -> Tensor:
        a, b, h0 = (t.detach().contiguous() for t in (a, b, h0))
        h = scan_forward(forward_kernel(), a, b, h0, per_step)
        ctx.save_for_backward(a, h0, h)
        ctx.per_step = per_step
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy: Tensor):
        a, h0, h = ctx.saved_tensors
        grads = scan_backward(
            backward_kernel(), a, h0, h, dy.to(h.dtype).contiguous(), ctx.per_step, ctx.needs_input_grad[0]
        )
        return *grads, None


def linear_scan_compiled(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """Solve ``h_t = a_t * h_{t-1} + b_t`` along dim 1 of ``b`` (B, L, D), float32 or float64 on the CPU;
    ``a`` per step (B, L, D) or per channel (D,), ``h0`` (B, D) or None (zero). Differentiable in a, b, h0."""
    decay, initial, per_step = scan_arguments(a, b, h0)
    return CompiledLinearScan.apply(decay, b, initial, per_step)
