"""Triton kernels of the fused DSN neuron (Huang et al., arXiv 2602.01133; neurons.md section 5).

One pass: from the causal-conv logits ``a`` (computed by PyTorch), the decay in log space
``log alpha = logsigmoid(a) / tau`` (no underflow), ``h_t = alpha_t h_{t-1} + (1 - alpha_t) x_t``
and the spikes ``clip(round(h), 0, N)`` or binary ``H(h - 1/2)``. One program per (batch,
channel tile) steps through time. Backward, one reverse loop: ``dh_t`` from the spike surrogate
(straight-through inside [0, N], or ATan for binary), ``g_t = dh_t + alpha_{t+1} g_{t+1}``,
``dx_t = g_t (1 - alpha_t)``, ``da_t = g_t alpha_t (h_{t-1} - x_t) sigmoid(-a_t) / tau``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.linear_scan.triton import kernel_dtype, kernel_scalars, tile_sizes
from lra_snn.ops.lif.triton import surrogate_slope


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
def dsn_forward_kernel(logit_ptr, x_ptr, h_ptr, spikes_ptr, scalars_ptr, length, channels,
                       BINARY: tl.constexpr, COMPUTE: tl.constexpr, BLOCK_D: tl.constexpr):
    inv_tau = tl.load(scalars_ptr)
    n_levels = tl.load(scalars_ptr + 1)
    batch = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    ok = cols < channels
    pointer = batch * length * channels + cols
    h = tl.zeros([BLOCK_D], dtype=COMPUTE)
    for _ in range(length):
        log_alpha = log_decay(tl.load(logit_ptr + pointer, mask=ok, other=0.0).to(COMPUTE), inv_tau)
        x = tl.load(x_ptr + pointer, mask=ok, other=0.0).to(COMPUTE)
        h = tl.exp(log_alpha) * h + one_minus_exp(log_alpha) * x
        if BINARY:
            fired = tl.where(h >= 0.5, 1.0, 0.0)
        else:
            fired = tl.minimum(tl.maximum(tl.floor(h + 0.5), 0.0), n_levels)
        tl.store(h_ptr + pointer, h.to(h_ptr.dtype.element_ty), mask=ok)
        tl.store(spikes_ptr + pointer, fired.to(spikes_ptr.dtype.element_ty), mask=ok)
        pointer += channels


@triton.jit
def dsn_backward_kernel(logit_ptr, x_ptr, h_ptr, dspikes_ptr, dlogit_ptr, dx_ptr, scalars_ptr, length, channels,
                        BINARY: tl.constexpr, COMPUTE: tl.constexpr, BLOCK_D: tl.constexpr):
    inv_tau = tl.load(scalars_ptr)
    n_levels = tl.load(scalars_ptr + 1)
    batch = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    ok = cols < channels
    first = batch * length * channels + cols
    pointer = first + (length - 1) * channels
    grad = tl.zeros([BLOCK_D], dtype=COMPUTE)
    alpha_next = tl.zeros([BLOCK_D], dtype=COMPUTE)
    for _ in range(length):
        logit = tl.load(logit_ptr + pointer, mask=ok, other=0.0).to(COMPUTE)
        x = tl.load(x_ptr + pointer, mask=ok, other=0.0).to(COMPUTE)
        h = tl.load(h_ptr + pointer, mask=ok, other=0.0).to(COMPUTE)
        h_prev = tl.load(h_ptr + pointer - channels, mask=ok & (pointer > first), other=0.0).to(COMPUTE)
        dspikes = tl.load(dspikes_ptr + pointer, mask=ok, other=0.0).to(COMPUTE)
        if BINARY:
            dh = dspikes * surrogate_slope(h - 0.5, 0)
        else:
            dh = tl.where((h >= 0) & (h <= n_levels), dspikes, 0.0)
        grad = dh + alpha_next * grad
        log_alpha = log_decay(logit, inv_tau)
        alpha = tl.exp(log_alpha)
        sigmoid_neg = 1.0 / (1.0 + tl.exp(logit))
        tl.store(dx_ptr + pointer, (grad * one_minus_exp(log_alpha)).to(dx_ptr.dtype.element_ty), mask=ok)
        dlogit = grad * alpha * (h_prev - x) * sigmoid_neg * inv_tau
        tl.store(dlogit_ptr + pointer, dlogit.to(dlogit_ptr.dtype.element_ty), mask=ok)
        alpha_next = alpha
        pointer -= channels


class FusedDSN(torch.autograd.Function):
    """DSN spikes (B, L, D) from conv logits and inputs (B, L, D), differentiable in both."""

    @staticmethod
    def forward(ctx, logits: Tensor, x: Tensor, tau: float, n_levels: int, binary: bool) -> Tensor:
        logits, x = logits.contiguous(), x.contiguous()
        batch, length, channels = x.shape
        block_d = tile_sizes()[1]
        h = dispatch.allocate(x.shape, x, dtype=dispatch.compute_dtype(x.dtype))
        spikes = dispatch.allocate(x.shape, x)
        dsn_forward_kernel[(batch, triton.cdiv(channels, block_d))](
            logits, x, h, spikes, kernel_scalars([1.0 / tau, n_levels], x), length, channels,
            BINARY=binary, COMPUTE=kernel_dtype(x.dtype), BLOCK_D=block_d)
        ctx.save_for_backward(logits, x, h)
        ctx.settings = (1.0 / tau, float(n_levels), binary)
        return spikes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dspikes: Tensor):
        logits, x, h = ctx.saved_tensors
        inv_tau, n_levels, binary = ctx.settings
        batch, length, channels = x.shape
        block_d = tile_sizes()[1]
        dlogits = dispatch.allocate(x.shape, logits)
        dx = dispatch.allocate(x.shape, x)
        dsn_backward_kernel[(batch, triton.cdiv(channels, block_d))](
            logits, x, h, dspikes.contiguous(), dlogits, dx, kernel_scalars([inv_tau, n_levels], x), length, channels,
            BINARY=binary, COMPUTE=kernel_dtype(x.dtype), BLOCK_D=block_d)
        return dlogits, dx, None, None, None


def fused_dsn_triton(logits: Tensor, x: Tensor, tau: float, n_levels: int, binary: bool) -> Tensor:
    """DSN spikes from the decay logits and inputs (both (B, L, D)) in one kernel, with its backward."""
    if logits.shape != x.shape:
        raise ValueError(f"logits and x must have one shape, got {tuple(logits.shape)} and {tuple(x.shape)}")
    return FusedDSN.apply(logits, x, float(tau), int(n_levels), bool(binary))
