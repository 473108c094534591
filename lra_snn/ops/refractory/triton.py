"""Triton kernel of one boundary-compression iteration of the refractory LIF (SPikE-SSM reconstruction,
arXiv 2410.17268; neurons.md section 3).

One pass over (B, L, D), one program per (batch, channel tile) stepping through time: the
decaying traces of the previous iterate's spikes (reset, decay beta, and refractory, decay
gamma, both of the spikes strictly before t) and the next iterate
``H(excess_t - V_th beta trace_beta_t - rho trace_gamma_t)``. No autograd (the iteration runs
under ``no_grad``; the neuron differentiates the margin built from the returned traces).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.linear_scan.triton import kernel_dtype, kernel_scalars, tile_sizes


@triton.jit
def refractory_iteration_kernel(excess_ptr, spikes_ptr, v_th_ptr, rho_ptr, update_ptr, reset_ptr, refractory_ptr,
                                scalars_ptr, length, channels, COMPUTE: tl.constexpr, BLOCK_D: tl.constexpr):
    beta = tl.load(scalars_ptr)
    gamma = tl.load(scalars_ptr + 1)
    batch = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    ok = cols < channels
    v_th = tl.load(v_th_ptr + cols, mask=ok, other=0.0).to(COMPUTE)
    rho = tl.load(rho_ptr + cols, mask=ok, other=0.0).to(COMPUTE)
    pointer = batch * length * channels + cols
    reset = tl.zeros([BLOCK_D], dtype=COMPUTE)
    refractory = tl.zeros([BLOCK_D], dtype=COMPUTE)
    for _ in range(length):
        excess = tl.load(excess_ptr + pointer, mask=ok, other=0.0).to(COMPUTE)
        spikes = tl.load(spikes_ptr + pointer, mask=ok, other=0.0).to(COMPUTE)
        reset_trace = beta * reset
        update = tl.where(excess - v_th * reset_trace - rho * refractory >= 0, 1.0, 0.0)
        tl.store(update_ptr + pointer, update.to(update_ptr.dtype.element_ty), mask=ok)
        tl.store(reset_ptr + pointer, reset_trace.to(reset_ptr.dtype.element_ty), mask=ok)
        tl.store(refractory_ptr + pointer, refractory.to(refractory_ptr.dtype.element_ty), mask=ok)
        reset = beta * reset + spikes
        refractory = gamma * refractory + spikes
        pointer += channels


@torch.no_grad()
def refractory_iteration_triton(excess: Tensor, spikes: Tensor, v_th: Tensor, rho: Tensor, beta: float,
                                gamma: float) -> tuple[Tensor, Tensor, Tensor]:
    """Next iterate, reset trace and refractory trace (B, L, D); ``v_th``, ``rho`` per channel (D,)."""
    excess, spikes = excess.contiguous(), spikes.contiguous()
    batch, length, channels = excess.shape
    block_d = tile_sizes()[1]
    update, reset, refractory = (dispatch.allocate(excess.shape, excess) for _ in range(3))
    refractory_iteration_kernel[(batch, triton.cdiv(channels, block_d))](
        excess, spikes, v_th.contiguous(), rho.contiguous(), update, reset, refractory,
        kernel_scalars([beta, gamma], excess), length, channels, COMPUTE=kernel_dtype(excess.dtype), BLOCK_D=block_d)
    return update, reset, refractory
