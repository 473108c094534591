"""Triton path of the decoupled-reset LIF (PRF paper, arXiv 2410.03530; docs/kernels.md, "What needs a kernel").

Detached reset: one fused kernel, one pass over memory: reset-free potential
``u'_t = beta u'_{t-1} + x_t``, the threshold scan ``m_t = u'_t - V_th - b_t``, ``s_t = H(m_t)``,
``b_{t+1} = beta (b_t + V_th s_t)``, the spikes and the firing count. One program per (batch, channel
tile) walks time in chunks: each chunk is loaded as one tile (many loads in flight), ``u'`` is its
associative scan, and the threshold scan, which is sequential, takes its rows in turn in registers
(``threshold_chunk``, shared with ``lra_snn.ops.threshold_scan``). Backward through the potential:
``dx_t = sum_{j>=t} beta^(j-t) H'(m_j) ds_j``, a chunked reverse scan with the surrogate derivative
``H'`` of ``lra_snn.ops.surrogate.triton``. Coupled reset (gradient through the reset): the
linear-scan kernel for ``u'`` and the threshold-scan kernel with its reverse-scan backward.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.leaky_integrate.triton import leaky_integrate_triton
from lra_snn.ops.surrogate.triton import SURROGATE_CODES, surrogate_slope
from lra_snn.ops.threshold_scan.triton import threshold_chunk, threshold_scan_triton
from lra_snn.ops.triton_common import chunk_at, kernel_dtype, kernel_scalars, launch, program_tile, scan_chunk


@triton.jit
def lif_forward_kernel(
    x_ptr,
    spikes_ptr,
    margin_ptr,
    count_ptr,
    scalars_ptr,
    length,
    channels,
    COMPUTE: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    beta = tl.load(scalars_ptr)
    v_th = tl.load(scalars_ptr + 1)
    cols, col_ok, rows, base = program_tile(length, channels, CHUNK, BLOCK_D)
    batch = tl.program_id(0)
    potential = tl.zeros([BLOCK_D], dtype=COMPUTE)
    offset = tl.zeros([BLOCK_D], dtype=COMPUTE)
    count = tl.zeros([BLOCK_D], dtype=COMPUTE)
    for start in range(0, length, CHUNK):
        _, ok, offsets = chunk_at(start, rows, cols, col_ok, base, length, channels, False)
        x = tl.load(x_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)  # the whole chunk in flight at once
        reset_free, potential = scan_chunk(tl.where(ok, beta, 1.0), x, potential, rows, CHUNK)
        excess = reset_free - v_th
        resets, offset = threshold_chunk(excess, offset, v_th, beta, rows, CHUNK)
        margins = excess - resets
        spikes = tl.where(margins >= 0, 1.0, 0.0).to(COMPUTE)
        count += tl.sum(tl.where(ok, spikes, 0.0), axis=0)
        tl.store(spikes_ptr + offsets, spikes.to(spikes_ptr.dtype.element_ty), mask=ok)
        tl.store(margin_ptr + offsets, margins.to(margin_ptr.dtype.element_ty), mask=ok)
    tl.store(count_ptr + batch * channels + cols, count.to(count_ptr.dtype.element_ty), mask=col_ok)


@triton.jit
def lif_backward_kernel(
    margin_ptr,
    dspikes_ptr,
    dx_ptr,
    scalars_ptr,
    length,
    channels,
    SURROGATE: tl.constexpr,
    COMPUTE: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    beta = tl.load(scalars_ptr)
    cols, col_ok, rows, base = program_tile(length, channels, CHUNK, BLOCK_D)
    carry = tl.zeros([BLOCK_D], dtype=COMPUTE)
    for start in range(0, length, CHUNK):
        _, ok, offsets = chunk_at(start, rows, cols, col_ok, base, length, channels, True)  # reversed time
        margin = tl.load(margin_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        dspikes = tl.load(dspikes_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        grad, carry = scan_chunk(
            tl.where(ok, beta, 1.0), surrogate_slope(margin, SURROGATE) * dspikes, carry, rows, CHUNK
        )
        tl.store(dx_ptr + offsets, grad.to(dx_ptr.dtype.element_ty), mask=ok)


class FusedLIF(torch.autograd.Function):
    """Spikes (B, L, D) and firing counts (B, D) of the decoupled-reset LIF; gradient to ``x`` only."""

    @staticmethod
    def forward(ctx, x: Tensor, beta: float, v_th: float, surrogate: str) -> tuple[Tensor, Tensor]:
        x = x.contiguous()
        batch, length, channels = x.shape
        spikes = dispatch.allocate(x.shape, x)
        margin = dispatch.allocate(x.shape, x, dtype=dispatch.compute_dtype(x.dtype))
        count = dispatch.allocate((batch, channels), x, dtype=margin.dtype)
        grid, meta = launch("sequential", batch, channels)
        lif_forward_kernel[grid](
            x,
            spikes,
            margin,
            count,
            kernel_scalars([beta, v_th], x),
            length,
            channels,
            COMPUTE=kernel_dtype(x.dtype),
            **meta,
        )
        ctx.save_for_backward(margin)
        ctx.beta, ctx.surrogate, ctx.x_dtype = beta, surrogate, x.dtype
        ctx.mark_non_differentiable(count)
        return spikes, count

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dspikes: Tensor, _dcount: Tensor):
        (margin,) = ctx.saved_tensors
        batch, length, channels = margin.shape
        dx = dispatch.allocate(margin.shape, margin, dtype=ctx.x_dtype)
        grid, meta = launch("scan", batch, channels)
        lif_backward_kernel[grid](
            margin,
            dspikes.contiguous(),
            dx,
            kernel_scalars([ctx.beta], margin),
            length,
            channels,
            SURROGATE=SURROGATE_CODES[ctx.surrogate],
            COMPUTE=kernel_dtype(margin.dtype),
            **meta,
        )
        return dx, None, None, None


def lif_triton(
    x: Tensor, beta: float, v_th: float, surrogate: str = "atan", detach_reset: bool = True
) -> tuple[Tensor, Tensor]:
    """Spikes (B, L, D) and spike counts (B, D, no gradient) of ``x`` (B, L, D)."""
    if detach_reset:
        return FusedLIF.apply(x, float(beta), float(v_th), surrogate)
    excess = leaky_integrate_triton(x, beta) - v_th
    spikes, _ = threshold_scan_triton(excess, v_th, beta, surrogate, detach_reset)
    return spikes, spikes.detach().sum(1, dtype=dispatch.compute_dtype(x.dtype))
