"""Triton path of the banded product over time (the sliding PSN's hidden state, Fang et al., arXiv
2304.12760): ``H_t = sum_{i<k} w_i x_{t-k+1+i} + b``.

One program per (batch, channel tile, chunk of time steps): the chunk's outputs accumulate the k
shifted input tiles, each weighed by its tap (the taps run in a loop, so any k). Backward: ``dx_s =
sum_i w_i dH_{s+k-1-i}`` by the same kernel reading the window forward in time; ``dw_i = sum dH_t
x_{t-k+1+i}`` and ``db = sum dH`` as per-program partial sums (one row of k + 1 per program, summed by
PyTorch in float64), so no atomics and the same result on every run.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.tiles import tile
from lra_snn.ops.triton_common import kernel_dtype, kernel_scalars


@triton.jit
def chunk_tile(length, channels, CHUNK: tl.constexpr, BLOCK_D: tl.constexpr):
    """This program's time steps and channels, the mask of the elements that exist, and the offset
    of its batch element in a contiguous (B, L, D) tensor (grid: batch x channel tiles x time chunks)."""
    t = tl.program_id(2) * CHUNK + tl.arange(0, CHUNK)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    ok = (t < length)[:, None] & (cols < channels)[None, :]
    return t, cols, ok, tl.program_id(0) * length * channels


@triton.jit
def window_kernel(
    x_ptr,
    weight_ptr,
    scalars_ptr,
    out_ptr,
    length,
    channels,
    taps,
    ANTICAUSAL: tl.constexpr,
    COMPUTE: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """``out_t = sum_i w_i x_{t-k+1+i} + scalars[0]``, or when ``ANTICAUSAL`` ``sum_i w_i x_{t+k-1-i} + scalars[0]``
    (inputs outside 0 .. L-1 are zero)."""
    t, cols, ok, base = chunk_tile(length, channels, CHUNK, BLOCK_D)
    total = tl.zeros([CHUNK, BLOCK_D], dtype=COMPUTE)
    for tap in range(0, taps):
        weight = tl.load(weight_ptr + tap).to(COMPUTE)
        if ANTICAUSAL:
            source = t + (taps - 1 - tap)
        else:
            source = t - (taps - 1) + tap
        inside = ok & ((source >= 0) & (source < length))[:, None]
        values = tl.load(x_ptr + base + source[:, None] * channels + cols[None, :], mask=inside, other=0.0)
        total += weight * values.to(COMPUTE)
    total += tl.load(scalars_ptr).to(COMPUTE)
    tl.store(out_ptr + base + t[:, None] * channels + cols[None, :], total.to(out_ptr.dtype.element_ty), mask=ok)


@triton.jit
def parameter_gradient_kernel(
    x_ptr,
    dh_ptr,
    partial_ptr,
    length,
    channels,
    taps,
    COMPUTE: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """This program's row of ``partial`` (programs, k + 1): ``sum dH_t x_{t-k+1+i}`` over its tile for
    each tap i, then ``sum dH_t``."""
    t, cols, ok, base = chunk_tile(length, channels, CHUNK, BLOCK_D)
    program = (tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)) * tl.num_programs(2) + tl.program_id(2)
    dh = tl.load(dh_ptr + base + t[:, None] * channels + cols[None, :], mask=ok, other=0.0).to(COMPUTE)
    for tap in range(0, taps):
        source = t - (taps - 1) + tap
        inside = ok & (source >= 0)[:, None]
        values = tl.load(x_ptr + base + source[:, None] * channels + cols[None, :], mask=inside, other=0.0)
        tl.store(partial_ptr + program * (taps + 1) + tap, tl.sum(tl.sum(dh * values.to(COMPUTE), 1), 0))
    tl.store(partial_ptr + program * (taps + 1) + taps, tl.sum(tl.sum(dh, 1), 0))


def _launch(x: Tensor) -> tuple[tuple[int, int, int], dict[str, int]]:
    """Grid (batch, channel tiles, time chunks) and meta-parameters."""
    shape = tile("scan")
    grid = (x.shape[0], triton.cdiv(x.shape[2], shape.block_d), triton.cdiv(x.shape[1], shape.chunk))
    return grid, {"CHUNK": shape.chunk, "BLOCK_D": shape.block_d, "num_warps": shape.num_warps}


def _window(x: Tensor, weight: Tensor, offset: Tensor, anticausal: bool) -> Tensor:
    out = dispatch.allocate(x.shape, x)
    grid, meta = _launch(x)
    window_kernel[grid](
        x,
        weight,
        offset,
        out,
        x.shape[1],
        x.shape[2],
        weight.shape[0],
        ANTICAUSAL=anticausal,
        COMPUTE=kernel_dtype(x.dtype),
        **meta,
    )
    return out


class TritonBandedProduct(torch.autograd.Function):
    """``H`` (B, L, D) from ``x`` (B, L, D), ``weight`` (k,) and the scalar ``bias``, differentiable in all three."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        x, weight = x.contiguous(), weight.contiguous()
        ctx.save_for_backward(x, weight)
        ctx.bias_dtype = bias.dtype
        return _window(x, weight, kernel_scalars([float(bias)], x), anticausal=False)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dh: Tensor):
        x, weight = ctx.saved_tensors
        dh = dh.contiguous()
        dx = _window(dh, weight, kernel_scalars([0.0], x), anticausal=True)
        grid, meta = _launch(x)
        taps = weight.shape[0]
        partial = dispatch.allocate((grid[0] * grid[1] * grid[2], taps + 1), x, dtype=dispatch.compute_dtype(x.dtype))
        parameter_gradient_kernel[grid](
            x, dh, partial, x.shape[1], x.shape[2], taps, COMPUTE=kernel_dtype(x.dtype), **meta
        )
        sums = partial.sum(0, dtype=torch.float64)
        return dx, sums[:taps].to(weight.dtype), sums[taps].to(ctx.bias_dtype)


def banded_product_triton(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``H`` (B, L, D) of inputs ``x`` (B, L, D), window weights ``weight`` (k,) and the scalar ``bias``,
    differentiable in all three."""
    return TritonBandedProduct.apply(x, weight, bias)
