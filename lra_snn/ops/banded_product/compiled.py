"""Compiled CPU path of the banded product over time (the sliding PSN's hidden state, Fang et al.,
arXiv 2304.12760): ``H_t = sum_{i<k} w_i x_{t-k+1+i} + b`` as numba loops over time, forward and
backward (``lra_snn.ops.host_compile``).

Each (batch row, channel block) walks time in the (B, L, D) layout with the channels innermost, so the
compiler vectorises over channels, and reads every input row once from memory (the k rows of a window
are in cache); ``numba.prange`` splits rows (and channel blocks) across ``torch.get_num_threads()``
threads. The forward adds the taps' products four at a time, ``(w_0 x_{t-k+1} + w_1 x_{t-k+2}) + (...)``,
then ``b``, in the inputs' dtype, with fused multiply-adds where the compiler forms them (numba's
``fastmath={"contract"}``, nothing else relaxed): the naive loop's ``einsum`` leaves its summation order
to the matrix library, so the two agree to rounding, not bit for bit. Backward, one forward walk over
the inputs: ``dx_s = sum_i w_i dH_{s+k-1-i}`` (the window read forward), and per channel lane ``dw_i
+= x_s dH_{s+k-1-i}``, ``db += dH_s``; the lanes and rows are summed in float64.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.compiled_rows import parallel_kernel, run_rows
from lra_snn.ops.host_compile import host_function

TAPS_AT_ONCE = 4  # the forward adds this many taps' products per pass over the output row


def _forward_loop(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, h: np.ndarray, width: int) -> None:
    """Fill ``h`` (B, L, D) from ``x`` (B, L, D), ``weight`` (k,) and ``bias`` (1,): each output row is
    the sum over taps, ``TAPS_AT_ONCE`` taps' products per pass over it (so the row is read and written
    once per four multiply-adds), then ``+ b``."""
    batch, length, channels = x.shape
    k = weight.shape[0]
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        size = stop - start
        for t in range(length):
            h_t = h[row, t, start:stop]
            for i in range(size):
                h_t[i] = 0
            tap = max(0, k - 1 - t)
            while tap + TAPS_AT_ONCE <= k:
                first = t - k + 1 + tap
                w0, w1, w2, w3 = weight[tap], weight[tap + 1], weight[tap + 2], weight[tap + 3]
                x0, x1 = x[row, first, start:stop], x[row, first + 1, start:stop]
                x2, x3 = x[row, first + 2, start:stop], x[row, first + 3, start:stop]
                for i in range(size):
                    h_t[i] += (w0 * x0[i] + w1 * x1[i]) + (w2 * x2[i] + w3 * x3[i])
                tap += TAPS_AT_ONCE
            for rest in range(tap, k):
                w, x_j = weight[rest], x[row, t - k + 1 + rest, start:stop]
                for i in range(size):
                    h_t[i] += w * x_j[i]
            for i in range(size):
                h_t[i] += bias[0]


@host_function(fastmath={"contract"})
def _backward_step(
    x: np.ndarray, weight: np.ndarray, dh: np.ndarray, dx: np.ndarray, sums: np.ndarray, row: int, s: int, start: int
) -> None:
    """One step ``s`` of the backward: ``dx_s`` and its terms of each tap's sum (the window may pass the end)."""
    length, k = x.shape[1], weight.shape[0]
    size = sums.shape[1]
    x_s, dx_s = x[row, s, start : start + size], dx[row, s, start : start + size]
    for i in range(size):
        dx_s[i] = 0
    for tap in range(max(0, s + k - length), k):
        w, dh_j, sums_tap = weight[tap], dh[row, s + k - 1 - tap, start : start + size], sums[tap]
        for i in range(size):
            dx_s[i] += w * dh_j[i]
            sums_tap[i] += x_s[i] * dh_j[i]


def _backward_loop(
    x: np.ndarray, weight: np.ndarray, dh: np.ndarray, dx: np.ndarray, lane_sums: np.ndarray, width: int
) -> None:
    """Fill ``dx`` (B, L, D) and ``lane_sums`` (B, k + 1, D): each row's and channel's sums over time of
    ``x_s dH_{s+k-1-i}`` (i < k) and of ``dH_s`` (row k), from the upstream ``dh`` (B, L, D).

    Steps go in pairs (s, s + 1) while both windows lie inside the input, and taps in pairs: the two
    steps' windows share all but one row of ``dH``, so three rows read serve two steps and two taps
    (four of ``dx``'s multiply-adds and four of the sums'), and each sum is read and written once per
    two steps; the last steps go one at a time."""
    batch, length, channels = x.shape
    k = weight.shape[0]
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        size = stop - start
        sums = np.zeros((k + 1, size), x.dtype)
        s = 0
        while s + k < length:
            x_a, x_b = x[row, s, start:stop], x[row, s + 1, start:stop]
            dx_a, dx_b = dx[row, s, start:stop], dx[row, s + 1, start:stop]
            for i in range(size):
                dx_a[i] = 0
                dx_b[i] = 0
            tap = 0
            while tap + 2 <= k:  # taps tap, tap + 1: step s reads dH `middle`, `earlier`; s + 1 `later`, `middle`
                w0, w1, latest = weight[tap], weight[tap + 1], s + k - tap
                later, middle = dh[row, latest, start:stop], dh[row, latest - 1, start:stop]
                earlier = dh[row, latest - 2, start:stop]
                sums_0, sums_1 = sums[tap], sums[tap + 1]
                for i in range(size):
                    dx_a[i] += w0 * middle[i] + w1 * earlier[i]
                    dx_b[i] += w0 * later[i] + w1 * middle[i]
                    sums_0[i] += x_a[i] * middle[i] + x_b[i] * later[i]
                    sums_1[i] += x_a[i] * earlier[i] + x_b[i] * middle[i]
                tap += 2
            if tap < k:  # an odd k's last tap
                w0, latest = weight[tap], s + k - tap
                later, middle, sums_0 = dh[row, latest, start:stop], dh[row, latest - 1, start:stop], sums[tap]
                for i in range(size):
                    dx_a[i] += w0 * middle[i]
                    dx_b[i] += w0 * later[i]
                    sums_0[i] += x_a[i] * middle[i] + x_b[i] * later[i]
            s += 2
        for rest in range(s, length):
            _backward_step(x, weight, dh, dx, sums, row, rest, start)
        sums_bias = sums[k]
        for t in range(length):
            dh_t = dh[row, t, start:stop]
            for i in range(size):
                sums_bias[i] += dh_t[i]
        lane_sums[row, :, start:stop] = sums


forward_kernel = parallel_kernel(_forward_loop, fastmath={"contract"})
backward_kernel = parallel_kernel(_backward_loop, fastmath={"contract"})


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
