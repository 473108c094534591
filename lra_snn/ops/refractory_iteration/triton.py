"""Triton path of one boundary-compression iteration of the refractory LIF (SPikE-SSM, arXiv
2410.17268, as reconstructed in docs/neurons.md, section 3).

One pass over (B, L, D), one program per (batch, channel tile) walking time in chunks: the
decaying traces of the previous iterate's spikes (reset, decay beta, and refractory, decay
gamma, both of the spikes strictly before t) and the next iterate
``H(excess_t - V_th beta trace_beta_t - rho trace_gamma_t)``. The traces are linear in the
given spikes, so each is a chunked ``tl.associative_scan`` of the spikes shifted by one step. No
autograd (the iteration runs under ``no_grad``; the neuron differentiates the margin built from
the returned traces).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.triton_common import chunk_at, kernel_dtype, kernel_scalars, launch, program_tile, scan_chunk


@triton.jit
def refractory_iteration_kernel(
    excess_ptr,
    spikes_ptr,
    v_th_ptr,
    rho_ptr,
    update_ptr,
    reset_ptr,
    refractory_ptr,
    scalars_ptr,
    length,
    channels,
    COMPUTE: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    beta = tl.load(scalars_ptr)
    gamma = tl.load(scalars_ptr + 1)
    cols, col_ok, rows, base = program_tile(length, channels, CHUNK, BLOCK_D)
    v_th = tl.load(v_th_ptr + cols, mask=col_ok, other=0.0).to(COMPUTE)
    rho = tl.load(rho_ptr + cols, mask=col_ok, other=0.0).to(COMPUTE)
    reset_carry = tl.zeros([BLOCK_D], dtype=COMPUTE)
    refractory_carry = tl.zeros([BLOCK_D], dtype=COMPUTE)
    for start in range(0, length, CHUNK):
        t, ok, offsets = chunk_at(start, rows, cols, col_ok, base, length, channels, False)
        excess = tl.load(excess_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        # the spike of the step before: traces hold the spikes strictly before t
        previous = tl.load(spikes_ptr + offsets - channels, mask=ok & (t >= 1)[:, None], other=0.0).to(COMPUTE)
        reset, reset_carry = scan_chunk(tl.where(ok, beta, 1.0), previous, reset_carry, rows, CHUNK)
        refractory, refractory_carry = scan_chunk(tl.where(ok, gamma, 1.0), previous, refractory_carry, rows, CHUNK)
        reset_trace = beta * reset
        update = tl.where(excess - v_th[None, :] * reset_trace - rho[None, :] * refractory >= 0, 1.0, 0.0)
        tl.store(update_ptr + offsets, update.to(update_ptr.dtype.element_ty), mask=ok)
        tl.store(reset_ptr + offsets, reset_trace.to(reset_ptr.dtype.element_ty), mask=ok)
        tl.store(refractory_ptr + offsets, refractory.to(refractory_ptr.dtype.element_ty), mask=ok)


@torch.no_grad()
def refractory_iteration_triton(
    excess: Tensor, spikes: Tensor, v_th: Tensor, rho: Tensor, beta: float, gamma: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Next iterate, reset trace and refractory trace (B, L, D); ``v_th``, ``rho`` per channel (D,)."""
    excess, spikes = excess.contiguous(), spikes.contiguous()
    batch, length, channels = excess.shape
    update, reset, refractory = (dispatch.allocate(excess.shape, excess) for _ in range(3))
    grid, meta = launch("scan", batch, channels)
    refractory_iteration_kernel[grid](
        excess,
        spikes,
        v_th.contiguous(),
        rho.contiguous(),
        update,
        reset,
        refractory,
        kernel_scalars([beta, gamma], excess),
        length,
        channels,
        COMPUTE=kernel_dtype(excess.dtype),
        **meta,
    )
    return update, reset, refractory
