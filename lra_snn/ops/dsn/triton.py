"""Triton path of the DSN: one fused kernel (Huang et al., arXiv 2602.01133; docs/neurons.md, section 5).

One pass: from the causal-conv logits ``a`` (computed by PyTorch), the decay in log space
``log alpha = logsigmoid(a) / tau`` (no underflow), ``h_t = alpha_t h_{t-1} + (1 - alpha_t) x_t``
and the spikes ``clip(round(h), 0, N)`` or binary ``H(h - 1/2)``. One program per (batch,
channel tile) walks time in chunks, the membrane by ``tl.associative_scan`` with a carry (the
recurrence is linear; the spikes do not feed back). Backward, one reverse scan: ``dh_t`` from the
spike surrogate (straight-through inside [0, N], or ATan for binary), ``g_t = dh_t + alpha_{t+1} g_{t+1}``,
``dx_t = g_t (1 - alpha_t)``, ``da_t = g_t alpha_t (h_{t-1} - x_t) sigmoid(-a_t) / tau``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.surrogate.triton import surrogate_slope
from lra_snn.ops.triton_common import chunk_at, kernel_dtype, kernel_scalars, launch, program_tile, scan_chunk


@triton.jit
def log_decay(logit, inv_tau):
    """``logsigmoid(a) / tau`` computed stably as ``(min(a, 0) - log(1 + exp(-|a|))) / tau``."""
    return (tl.minimum(logit, 0.0) - tl.log(1.0 + tl.exp(-tl.abs(logit)))) * inv_tau


@triton.jit
def one_minus_exp(log_alpha):
    """``1 - exp(log_alpha)`` = ``-expm1``, by its series near 0 where the subtraction cancels."""
    series = -log_alpha * (1.0 + log_alpha * (0.5 + log_alpha / 6.0))
    return tl.where(log_alpha > -1e-3, series, 1.0 - tl.exp(log_alpha))


@triton.jit
def dsn_forward_kernel(
    logit_ptr,
    x_ptr,
    h_ptr,
    spikes_ptr,
    scalars_ptr,
    length,
    channels,
    BINARY: tl.constexpr,
    COMPUTE: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    inv_tau = tl.load(scalars_ptr)
    n_levels = tl.load(scalars_ptr + 1)
    cols, col_ok, rows, base = program_tile(length, channels, CHUNK, BLOCK_D)
    carry = tl.zeros([BLOCK_D], dtype=COMPUTE)
    for start in range(0, length, CHUNK):
        _, ok, offsets = chunk_at(start, rows, cols, col_ok, base, length, channels, False)
        log_alpha = log_decay(tl.load(logit_ptr + offsets, mask=ok, other=0.0).to(COMPUTE), inv_tau)
        x = tl.load(x_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        h, carry = scan_chunk(tl.where(ok, tl.exp(log_alpha), 1.0), one_minus_exp(log_alpha) * x, carry, rows, CHUNK)
        if BINARY:
            fired = tl.where(h >= 0.5, 1.0, 0.0)
        else:
            fired = tl.minimum(tl.maximum(tl.floor(h + 0.5), 0.0), n_levels)
        tl.store(h_ptr + offsets, h.to(h_ptr.dtype.element_ty), mask=ok)
        tl.store(spikes_ptr + offsets, fired.to(spikes_ptr.dtype.element_ty), mask=ok)


@triton.jit
def dsn_backward_kernel(
    logit_ptr,
    x_ptr,
    h_ptr,
    dspikes_ptr,
    dlogit_ptr,
    dx_ptr,
    scalars_ptr,
    length,
    channels,
    BINARY: tl.constexpr,
    COMPUTE: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    inv_tau = tl.load(scalars_ptr)
    n_levels = tl.load(scalars_ptr + 1)
    cols, col_ok, rows, base = program_tile(length, channels, CHUNK, BLOCK_D)
    carry = tl.zeros([BLOCK_D], dtype=COMPUTE)
    for start in range(0, length, CHUNK):
        t, ok, offsets = chunk_at(start, rows, cols, col_ok, base, length, channels, True)  # reversed time
        logit = tl.load(logit_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        x = tl.load(x_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        h = tl.load(h_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        h_prev = tl.load(h_ptr + offsets - channels, mask=ok & (t >= 1)[:, None], other=0.0).to(COMPUTE)
        dspikes = tl.load(dspikes_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        has_next = ok & (t + 1 < length)[:, None]
        logit_next = tl.load(logit_ptr + offsets + channels, mask=has_next, other=0.0).to(COMPUTE)
        alpha_next = tl.where(has_next, tl.exp(log_decay(logit_next, inv_tau)), tl.where(ok, 0.0, 1.0))
        if BINARY:
            dh = dspikes * surrogate_slope(h - 0.5, 0)  # 0: SURROGATE_CODES["atan"]
        else:
            dh = tl.where((h >= 0) & (h <= n_levels), dspikes, 0.0)
        grad, carry = scan_chunk(alpha_next, dh, carry, rows, CHUNK)
        log_alpha = log_decay(logit, inv_tau)
        sigmoid_neg = 1.0 / (1.0 + tl.exp(logit))
        tl.store(dx_ptr + offsets, (grad * one_minus_exp(log_alpha)).to(dx_ptr.dtype.element_ty), mask=ok)
        dlogit = grad * tl.exp(log_alpha) * (h_prev - x) * sigmoid_neg * inv_tau
        tl.store(dlogit_ptr + offsets, dlogit.to(dlogit_ptr.dtype.element_ty), mask=ok)


class FusedDSN(torch.autograd.Function):
    """DSN spikes (B, L, D) from conv logits and inputs (B, L, D), differentiable in both."""

    @staticmethod
    def forward(ctx, logits: Tensor, x: Tensor, tau: float, n_levels: int, binary: bool) -> Tensor:
        logits, x = logits.contiguous(), x.contiguous()
        batch, length, channels = x.shape
        h = dispatch.allocate(x.shape, x, dtype=dispatch.compute_dtype(x.dtype))
        spikes = dispatch.allocate(x.shape, x)
        grid, meta = launch("scan", batch, channels)
        dsn_forward_kernel[grid](
            logits,
            x,
            h,
            spikes,
            kernel_scalars([1.0 / tau, n_levels], x),
            length,
            channels,
            BINARY=binary,
            COMPUTE=kernel_dtype(x.dtype),
            **meta,
        )
        ctx.save_for_backward(logits, x, h)
        ctx.settings = (1.0 / tau, float(n_levels), binary)
        return spikes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dspikes: Tensor):
        logits, x, h = ctx.saved_tensors
        inv_tau, n_levels, binary = ctx.settings
        batch, length, channels = x.shape
        dlogits = dispatch.allocate(x.shape, logits)
        dx = dispatch.allocate(x.shape, x)
        grid, meta = launch("scan", batch, channels)
        dsn_backward_kernel[grid](
            logits,
            x,
            h,
            dspikes.contiguous(),
            dlogits,
            dx,
            kernel_scalars([inv_tau, n_levels], x),
            length,
            channels,
            BINARY=binary,
            COMPUTE=kernel_dtype(x.dtype),
            **meta,
        )
        return dlogits, dx, None, None, None


def dsn_triton(logits: Tensor, x: Tensor, tau: float, n_levels: int, binary: bool) -> Tensor:
    """Spikes (B, L, D) from the decay logits and inputs (both (B, L, D)), differentiable in both."""
    return FusedDSN.apply(logits, x, float(tau), int(n_levels), bool(binary))
