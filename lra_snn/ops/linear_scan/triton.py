"""Triton kernels of the real first-order scan ``h_t = a_t h_{t-1} + b_t`` (docs/kernels.md, "Scan
kernels in Triton: the known-good recipe").

Layout (B, L, D), contiguous. One program per (batch, tile of ``BLOCK_D`` channels) walks time in
chunks of ``CHUNK`` steps: ``tl.associative_scan`` over the pairs ``(a, b)`` with the combine
``(a_l, b_l), (a_r, b_r) -> (a_l a_r, a_r b_l + b_r)``, then ``h += cumprod(a) * carry`` and
the carry becomes the chunk's last state. Padding steps get ``a = 1, b = 0`` so they pass the
carry through. The decay is per step (B, L, D) or per channel (D,). Backward is the reverse scan
``g_t = dy_t + a_{t+1} g_{t+1}``, ``db_t = g_t``, ``da_t = g_t h_{t-1}``, run as a forward scan over
reversed time indices (no ``reverse=True``, which has had GPU bugs). Arithmetic in float32
(float64 for float64 inputs), loads upcast at once.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.triton_common import chunk_at, kernel_dtype, launch, program_tile, scan_chunk


@triton.jit
def scan_forward_kernel(
    a_ptr,
    b_ptr,
    h0_ptr,
    h_ptr,
    length,
    channels,
    A_PER_STEP: tl.constexpr,
    HAS_H0: tl.constexpr,
    COMPUTE: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    cols, col_ok, rows, base = program_tile(length, channels, CHUNK, BLOCK_D)
    batch = tl.program_id(0)
    carry = tl.zeros([BLOCK_D], dtype=COMPUTE)
    if HAS_H0:
        carry = tl.load(h0_ptr + batch * channels + cols, mask=col_ok, other=0.0).to(COMPUTE)
    a_channel = tl.load(a_ptr + cols, mask=col_ok, other=1.0).to(COMPUTE)
    for start in range(0, length, CHUNK):
        _, ok, offsets = chunk_at(start, rows, cols, col_ok, base, length, channels, False)
        b = tl.load(b_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        if A_PER_STEP:
            a = tl.load(a_ptr + offsets, mask=ok, other=1.0).to(COMPUTE)
        else:
            a = tl.where(ok, tl.broadcast_to(a_channel[None, :], [CHUNK, BLOCK_D]), 1.0)
        h, carry = scan_chunk(a, b, carry, rows, CHUNK)
        tl.store(h_ptr + offsets, h.to(h_ptr.dtype.element_ty), mask=ok)


@triton.jit
def scan_backward_kernel(
    a_ptr,
    h_ptr,
    h0_ptr,
    dy_ptr,
    db_ptr,
    da_ptr,
    dh0_ptr,
    length,
    channels,
    A_PER_STEP: tl.constexpr,
    HAS_H0: tl.constexpr,
    COMPUTE: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    cols, col_ok, rows, base = program_tile(length, channels, CHUNK, BLOCK_D)
    batch = tl.program_id(0)
    carry = tl.zeros([BLOCK_D], dtype=COMPUTE)
    da_sum = tl.zeros([BLOCK_D], dtype=COMPUTE)
    a_channel = tl.load(a_ptr + cols, mask=col_ok, other=1.0).to(COMPUTE)
    h0 = tl.zeros([BLOCK_D], dtype=COMPUTE)
    if HAS_H0:
        h0 = tl.load(h0_ptr + batch * channels + cols, mask=col_ok, other=0.0).to(COMPUTE)
    for start in range(0, length, CHUNK):
        t, ok, offsets = chunk_at(start, rows, cols, col_ok, base, length, channels, True)  # reversed time
        dy = tl.load(dy_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        if A_PER_STEP:
            has_next = ok & (t + 1 < length)[:, None]
            a_next = tl.load(a_ptr + offsets + channels, mask=has_next, other=0.0).to(COMPUTE)
            a_next = tl.where(ok, a_next, 1.0)
        else:
            a_next = tl.where(ok, tl.broadcast_to(a_channel[None, :], [CHUNK, BLOCK_D]), 1.0)
        g, carry = scan_chunk(a_next, dy, carry, rows, CHUNK)
        tl.store(db_ptr + offsets, g.to(db_ptr.dtype.element_ty), mask=ok)
        h_prev = tl.load(h_ptr + offsets - channels, mask=ok & (t >= 1)[:, None], other=0.0).to(COMPUTE)
        h_prev = tl.where((t == 0)[:, None], h0[None, :], h_prev)
        da = g * h_prev
        if A_PER_STEP:
            tl.store(da_ptr + offsets, da.to(da_ptr.dtype.element_ty), mask=ok)
        else:
            da_sum += tl.sum(tl.where(ok, da, 0.0), axis=0)
    if not A_PER_STEP:
        tl.store(da_ptr + batch * channels + cols, da_sum.to(da_ptr.dtype.element_ty), mask=col_ok)
    if HAS_H0:
        a_first = a_channel
        if A_PER_STEP:
            a_first = tl.load(a_ptr + base + cols, mask=col_ok, other=0.0).to(COMPUTE)
        tl.store(dh0_ptr + batch * channels + cols, (carry * a_first).to(dh0_ptr.dtype.element_ty), mask=col_ok)


class TritonLinearScan(torch.autograd.Function):
    """``h`` from ``a`` ((B, L, D) or (D,)), ``b`` (B, L, D) and ``h0`` ((B, D) or None), contiguous."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
        per_step = a.dim() == 3
        h = dispatch.allocate(b.shape, b)
        grid, meta = launch("scan", b.shape[0], b.shape[2])
        scan_forward_kernel[grid](
            a,
            b,
            h0 if h0 is not None else b,
            h,
            b.shape[1],
            b.shape[2],
            A_PER_STEP=per_step,
            HAS_H0=h0 is not None,
            COMPUTE=kernel_dtype(b.dtype),
            **meta,
        )
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy: Tensor):
        a, h, h0 = ctx.saved_tensors
        dy = dy.contiguous()
        per_step = a.dim() == 3
        batch, _, channels = h.shape
        db = dispatch.allocate(h.shape, h)
        da = dispatch.allocate(h.shape if per_step else (batch, channels), h, dtype=dispatch.compute_dtype(a.dtype))
        dh0 = dispatch.allocate((batch, channels), h) if h0 is not None else None
        grid, meta = launch("scan", batch, channels)
        scan_backward_kernel[grid](
            a,
            h,
            h0 if h0 is not None else h,
            dy,
            db,
            da,
            dh0 if dh0 is not None else h,
            h.shape[1],
            channels,
            A_PER_STEP=per_step,
            HAS_H0=h0 is not None,
            COMPUTE=kernel_dtype(h.dtype),
            **meta,
        )
        da = (da if per_step else da.sum(0)).to(a.dtype)
        return da, db, dh0


def linear_scan_triton(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """``h_t = a_t h_{t-1} + b_t`` along dim 1 of ``b`` (B, L, D); ``a`` (B, L, D) or (D,), ``h0`` (B, D)."""
    h0 = h0.contiguous() if h0 is not None else None
    return TritonLinearScan.apply(a.contiguous(), b.contiguous(), h0)
