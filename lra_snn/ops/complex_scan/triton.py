"""Triton kernels of the complex first-order scan ``z_t = a_t z_{t-1} + b_t`` with a real/imag split.

For the PRF neuron (arXiv 2410.03530), as an alternative to its FFT convolution. Same tiling as
``lra_snn.ops.linear_scan.triton`` (one program per batch and channel tile, time in chunks,
``tl.associative_scan`` plus a carry), on the interleaved (real, imag) storage of complex
tensors (``torch.view_as_real``). Combine: ``(a_l, b_l), (a_r, b_r) -> (a_l a_r, a_r b_l + b_r)``
in complex arithmetic. Backward (docs/kernels.md, "Scan kernels in Triton"): ``g_t = dy_t + conj(a_{t+1}) g_{t+1}``,
``db_t = g_t``, ``da_t = g_t conj(z_{t-1})``, over reversed time indices.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.triton_common import chunk_at, kernel_dtype, last_row, launch, program_tile


@triton.jit
def combine_complex_affine(ar_l, ai_l, br_l, bi_l, ar_r, ai_r, br_r, bi_r):
    """Compose two complex steps ``z -> a z + b`` (left first)."""
    return (
        ar_l * ar_r - ai_l * ai_r,
        ar_l * ai_r + ai_l * ar_r,
        ar_r * br_l - ai_r * bi_l + br_r,
        ar_r * bi_l + ai_r * br_l + bi_r,
    )


@triton.jit
def complex_scan_forward_kernel(
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
    carry_r = tl.zeros([BLOCK_D], dtype=COMPUTE)
    carry_i = tl.zeros([BLOCK_D], dtype=COMPUTE)
    if HAS_H0:
        carry_r = tl.load(h0_ptr + 2 * (batch * channels + cols), mask=col_ok, other=0.0).to(COMPUTE)
        carry_i = tl.load(h0_ptr + 2 * (batch * channels + cols) + 1, mask=col_ok, other=0.0).to(COMPUTE)
    ar_channel = tl.load(a_ptr + 2 * cols, mask=col_ok, other=1.0).to(COMPUTE)
    ai_channel = tl.load(a_ptr + 2 * cols + 1, mask=col_ok, other=0.0).to(COMPUTE)
    for start in range(0, length, CHUNK):
        _, ok, offsets = chunk_at(start, rows, cols, col_ok, base, length, channels, False)
        offsets = 2 * offsets  # interleaved (real, imag)
        br = tl.load(b_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        bi = tl.load(b_ptr + offsets + 1, mask=ok, other=0.0).to(COMPUTE)
        if A_PER_STEP:
            ar = tl.load(a_ptr + offsets, mask=ok, other=1.0).to(COMPUTE)
            ai = tl.load(a_ptr + offsets + 1, mask=ok, other=0.0).to(COMPUTE)
        else:
            ar = tl.where(ok, tl.broadcast_to(ar_channel[None, :], [CHUNK, BLOCK_D]), 1.0)
            ai = tl.where(ok, tl.broadcast_to(ai_channel[None, :], [CHUNK, BLOCK_D]), 0.0)
        pr, pi, hr, hi = tl.associative_scan((ar, ai, br, bi), 0, combine_complex_affine)
        hr = hr + pr * carry_r[None, :] - pi * carry_i[None, :]
        hi = hi + pr * carry_i[None, :] + pi * carry_r[None, :]
        tl.store(h_ptr + offsets, hr.to(h_ptr.dtype.element_ty), mask=ok)
        tl.store(h_ptr + offsets + 1, hi.to(h_ptr.dtype.element_ty), mask=ok)
        carry_r = last_row(hr, rows, CHUNK)
        carry_i = last_row(hi, rows, CHUNK)


@triton.jit
def complex_scan_backward_kernel(
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
    carry_r = tl.zeros([BLOCK_D], dtype=COMPUTE)
    carry_i = tl.zeros([BLOCK_D], dtype=COMPUTE)
    da_sum_r = tl.zeros([BLOCK_D], dtype=COMPUTE)
    da_sum_i = tl.zeros([BLOCK_D], dtype=COMPUTE)
    ar_channel = tl.load(a_ptr + 2 * cols, mask=col_ok, other=1.0).to(COMPUTE)
    ai_channel = tl.load(a_ptr + 2 * cols + 1, mask=col_ok, other=0.0).to(COMPUTE)
    h0_r = tl.zeros([BLOCK_D], dtype=COMPUTE)
    h0_i = tl.zeros([BLOCK_D], dtype=COMPUTE)
    if HAS_H0:
        h0_r = tl.load(h0_ptr + 2 * (batch * channels + cols), mask=col_ok, other=0.0).to(COMPUTE)
        h0_i = tl.load(h0_ptr + 2 * (batch * channels + cols) + 1, mask=col_ok, other=0.0).to(COMPUTE)
    for start in range(0, length, CHUNK):
        t, ok, offsets = chunk_at(start, rows, cols, col_ok, base, length, channels, True)  # reversed time
        offsets = 2 * offsets  # interleaved (real, imag)
        dyr = tl.load(dy_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        dyi = tl.load(dy_ptr + offsets + 1, mask=ok, other=0.0).to(COMPUTE)
        if A_PER_STEP:
            has_next = ok & (t + 1 < length)[:, None]
            ar = tl.where(ok, tl.load(a_ptr + offsets + 2 * channels, mask=has_next, other=0.0).to(COMPUTE), 1.0)
            ai = tl.where(ok, tl.load(a_ptr + offsets + 2 * channels + 1, mask=has_next, other=0.0).to(COMPUTE), 0.0)
        else:
            ar = tl.where(ok, tl.broadcast_to(ar_channel[None, :], [CHUNK, BLOCK_D]), 1.0)
            ai = tl.where(ok, tl.broadcast_to(ai_channel[None, :], [CHUNK, BLOCK_D]), 0.0)
        # the reverse recurrence multiplies by conj(a_{t+1})
        pr, pi, gr, gi = tl.associative_scan((ar, -ai, dyr, dyi), 0, combine_complex_affine)
        gr = gr + pr * carry_r[None, :] - pi * carry_i[None, :]
        gi = gi + pr * carry_i[None, :] + pi * carry_r[None, :]
        tl.store(db_ptr + offsets, gr.to(db_ptr.dtype.element_ty), mask=ok)
        tl.store(db_ptr + offsets + 1, gi.to(db_ptr.dtype.element_ty), mask=ok)
        carry_r = last_row(gr, rows, CHUNK)
        carry_i = last_row(gi, rows, CHUNK)
        has_prev = ok & (t >= 1)[:, None]
        hr = tl.load(h_ptr + offsets - 2 * channels, mask=has_prev, other=0.0).to(COMPUTE)
        hi = tl.load(h_ptr + offsets - 2 * channels + 1, mask=has_prev, other=0.0).to(COMPUTE)
        hr = tl.where((t == 0)[:, None], h0_r[None, :], hr)
        hi = tl.where((t == 0)[:, None], h0_i[None, :], hi)
        dar = gr * hr + gi * hi  # g * conj(h)
        dai = gi * hr - gr * hi
        if A_PER_STEP:
            tl.store(da_ptr + offsets, dar.to(da_ptr.dtype.element_ty), mask=ok)
            tl.store(da_ptr + offsets + 1, dai.to(da_ptr.dtype.element_ty), mask=ok)
        else:
            da_sum_r += tl.sum(tl.where(ok, dar, 0.0), axis=0)
            da_sum_i += tl.sum(tl.where(ok, dai, 0.0), axis=0)
    if not A_PER_STEP:
        tl.store(da_ptr + 2 * (batch * channels + cols), da_sum_r.to(da_ptr.dtype.element_ty), mask=col_ok)
        tl.store(da_ptr + 2 * (batch * channels + cols) + 1, da_sum_i.to(da_ptr.dtype.element_ty), mask=col_ok)
    if HAS_H0:
        a_first_r = ar_channel
        a_first_i = ai_channel
        if A_PER_STEP:
            a_first_r = tl.load(a_ptr + 2 * (base + cols), mask=col_ok, other=0.0).to(COMPUTE)
            a_first_i = tl.load(a_ptr + 2 * (base + cols) + 1, mask=col_ok, other=0.0).to(COMPUTE)
        dh0_r = carry_r * a_first_r + carry_i * a_first_i  # g_0 * conj(a_0)
        dh0_i = carry_i * a_first_r - carry_r * a_first_i
        tl.store(dh0_ptr + 2 * (batch * channels + cols), dh0_r.to(dh0_ptr.dtype.element_ty), mask=col_ok)
        tl.store(dh0_ptr + 2 * (batch * channels + cols) + 1, dh0_i.to(dh0_ptr.dtype.element_ty), mask=col_ok)


def _real_view(z: Tensor) -> Tensor:
    return torch.view_as_real(z.resolve_conj().contiguous())


class TritonComplexScan(torch.autograd.Function):
    """``z`` from complex ``a`` ((B, L, D) or (D,)), ``b`` (B, L, D) and ``h0`` ((B, D) or None)."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
        a, b = a.contiguous(), b.contiguous()
        h0 = h0.contiguous() if h0 is not None else None
        batch, length, channels = b.shape
        h = dispatch.allocate(b.shape, b)
        real = _real_view(b)
        grid, meta = launch("scan", batch, channels)
        complex_scan_forward_kernel[grid](
            _real_view(a),
            real,
            _real_view(h0) if h0 is not None else real,
            _real_view(h),
            length,
            channels,
            A_PER_STEP=a.dim() == 3,
            HAS_H0=h0 is not None,
            COMPUTE=kernel_dtype(real.dtype),
            **meta,
        )
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy: Tensor):
        a, h, h0 = ctx.saved_tensors
        per_step = a.dim() == 3
        batch, length, channels = h.shape
        grid, meta = launch("scan", batch, channels)
        db = dispatch.allocate(h.shape, h)
        da = dispatch.allocate(h.shape if per_step else (batch, channels), h)
        dh0 = dispatch.allocate((batch, channels), h) if h0 is not None else None
        real_h = _real_view(h)
        complex_scan_backward_kernel[grid](
            _real_view(a),
            real_h,
            _real_view(h0) if h0 is not None else real_h,
            _real_view(dy),
            _real_view(db),
            _real_view(da),
            _real_view(dh0) if dh0 is not None else real_h,
            length,
            channels,
            A_PER_STEP=per_step,
            HAS_H0=h0 is not None,
            COMPUTE=kernel_dtype(real_h.dtype),
            **meta,
        )
        return (da if per_step else da.sum(0)), db, dh0


def complex_scan_triton(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """``z_t = a_t z_{t-1} + b_t`` for complex ``a`` ((B, L, D) or (D,)), ``b`` (B, L, D), ``h0`` (B, D)."""
    return TritonComplexScan.apply(a, b, h0)
