"""Compiled CPU path of the banded product over time (the sliding PSN's hidden state, Fang et al.,
arXiv 2304.12760): ``H_t = sum_{i<k} w_i x_{t-k+1+i} + b`` as numba loops over time, forward and
backward (``lra_snn.ops.host_compile``).

Each (batch row, channel block) walks time in the (B, L, D) layout with the channels innermost, so the
compiler vectorises over channels, and reads every input row once from memory (the k rows of a window
are in cache); ``numba.prange`` splits rows (and channel blocks) across ``torch.get_num_threads()``
threads. The forward sums ``w_0 x_{t-k+1} + ... + w_{k-1} x_t`` in that order, then adds ``b``, in the
inputs' dtype: the naive loop's ``einsum`` leaves its summation order to the matrix library, so the
two agree to rounding, not bit for bit. Backward, one forward walk over the inputs: ``dx_s = sum_i w_i
dH_{s+k-1-i}`` (the window read forward), and per channel lane ``dw_i += x_s dH_{s+k-1-i}``, ``db +=
dH_s``; the lanes and rows are summed in float64.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.compiled_rows import parallel_kernel, run_rows


def _forward_loop(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, h: np.ndarray, width: int) -> None:
    """Fill ``h`` (B, L, D) from ``x`` (B, L, D), ``weight`` (k,) and ``bias`` (1,)."""
    batch, length, channels = x.shape
    k = weight.shape[0]
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        size = stop - start
        total = np.zeros(size, x.dtype)
        for t in range(length):
            for i in range(size):
                total[i] = 0
            for tap in range(max(0, k - 1 - t), k):
                w, x_j = weight[tap], x[row, t - k + 1 + tap, start:stop]
                for i in range(size):
                    total[i] += w * x_j[i]
            h_t = h[row, t, start:stop]
            for i in range(size):
                h_t[i] = total[i] + bias[0]


def _backward_loop(
    x: np.ndarray, weight: np.ndarray, dh: np.ndarray, dx: np.ndarray, lane_sums: np.ndarray, width: int
) -> None:
    """Fill ``dx`` (B, L, D) and ``lane_sums`` (B, k + 1, D): each row's and channel's sums over time of
    ``x_s dH_{s+k-1-i}`` (i < k) and of ``dH_s`` (row k), from the upstream ``dh`` (B, L, D)."""
    batch, length, channels = x.shape
    k = weight.shape[0]
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        size = stop - start
        sums = np.zeros((k + 1, size), x.dtype)
        total = np.zeros(size, x.dtype)
        for s in range(length):
            x_s = x[row, s, start:stop]
            for i in range(size):
                total[i] = 0
            for tap in range(max(0, s + k - length), k):
                w, dh_t, sums_tap = weight[tap], dh[row, s + k - 1 - tap, start:stop], sums[tap]
                for i in range(size):
                    total[i] += w * dh_t[i]
                for i in range(size):
                    sums_tap[i] += x_s[i] * dh_t[i]
            dx_s, dh_s, sums_bias = dx[row, s, start:stop], dh[row, s, start:stop], sums[k]
            for i in range(size):
                dx_s[i] = total[i]
            for i in range(size):
                sums_bias[i] += dh_s[i]
        lane_sums[row, :, start:stop] = sums


forward_kernel = parallel_kernel(_forward_loop)
backward_kernel = parallel_kernel(_backward_loop)


def _forward(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    h = torch.empty_like(x)
    run_rows(forward_kernel(), (x, weight, bias.reshape(1), h), like=x)
    return h


class CompiledBandedProduct(torch.autograd.Function):
    """``H`` (B, L, D) from ``x`` (B, L, D), ``weight`` (k,) and the scalar ``bias``, differentiable in all three."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        x, weight = x.contiguous(), weight.contiguous()
        ctx.save_for_backward(x, weight)
        return _forward(x, weight, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dh: Tensor):
        x, weight = ctx.saved_tensors
        dx = torch.empty_like(x)
        lane_sums = torch.zeros(x.shape[0], weight.shape[0] + 1, x.shape[2], dtype=x.dtype)
        run_rows(backward_kernel(), (x, weight, dh.contiguous(), dx, lane_sums), like=x)
        sums = lane_sums.sum((0, 2), dtype=torch.float64).to(x.dtype)
        return dx, sums[:-1], sums[-1]


def banded_product_compiled(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``H`` (B, L, D) of float32/float64 CPU inputs ``x`` (B, L, D), window weights ``weight`` (k,) and
    the scalar ``bias`` (both in x's dtype), differentiable in all three."""
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or bias.requires_grad):
        return CompiledBandedProduct.apply(x, weight, bias)
    return _forward(x.detach().contiguous(), weight.detach().contiguous(), bias.detach())
