"""Triton path of the threshold scan (PRF paper, arXiv 2410.03530, decoupled reset; docs/kernels.md,
"Scan kernels in Triton: the known-good recipe").

The kernel: the reset offsets ``b_1 = 0``, ``b_{t+1} = decay (b_t + V_th s_t)``, ``s_t = [e_t >= b_t]``
from the excess ``e`` of the reset-free potential, sequential in time, no autograd. One program per
(batch, channel tile) walks time in chunks; each chunk is loaded as one tile (many loads in flight)
and its rows are taken in turn in registers (``threshold_chunk``, shared with the fused LIF kernel).
Read ``e``, write ``b``: 8 bytes per element in float32. The spikes then take their gradient as on
the PyTorch path, the coupled reset's reverse scan running on the linear-scan kernel.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.linear_scan.triton import linear_scan_triton
from lra_snn.ops.threshold_scan.torch import per_channel, reset_spikes
from lra_snn.ops.triton_common import chunk_at, kernel_dtype, launch, program_tile


@triton.jit
def threshold_chunk(excess, offset, v_th, decay, rows, CHUNK: tl.constexpr):
    """Offsets of one (CHUNK, BLOCK_D) chunk of ``excess`` from the offset before it, row by row in
    registers, and the offset after it (``v_th`` and ``decay``: scalars or per channel)."""
    offsets = tl.zeros_like(excess)
    for i in tl.static_range(CHUNK):
        row = rows[:, None] == i
        offsets = tl.where(row, offset[None, :], offsets)
        fired = tl.where(tl.sum(tl.where(row, excess, 0.0), axis=0) >= offset, 1.0, 0.0)
        offset = decay * (offset + v_th * fired)
    return offsets, offset


@triton.jit
def threshold_scan_forward_kernel(
    excess_ptr,
    offset_ptr,
    v_th_ptr,
    decay_ptr,
    length,
    channels,
    COMPUTE: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    cols, col_ok, rows, base = program_tile(length, channels, CHUNK, BLOCK_D)
    v_th = tl.load(v_th_ptr + cols, mask=col_ok, other=0.0).to(COMPUTE)
    decay = tl.load(decay_ptr + cols, mask=col_ok, other=0.0).to(COMPUTE)
    offset = tl.zeros([BLOCK_D], dtype=COMPUTE)
    for start in range(0, length, CHUNK):
        _, ok, offsets = chunk_at(start, rows, cols, col_ok, base, length, channels, False)
        excess = tl.load(excess_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        out, offset = threshold_chunk(excess, offset, v_th, decay, rows, CHUNK)
        tl.store(offset_ptr + offsets, out.to(offset_ptr.dtype.element_ty), mask=ok)


@torch.no_grad()
def _offsets(excess: Tensor, v_th: Tensor, decay: Tensor) -> Tensor:
    """Offsets (B, L, D) of ``excess`` (B, L, D) from the kernel; ``v_th`` and ``decay`` per channel (D,)."""
    excess = excess.contiguous()
    batch, length, channels = excess.shape
    offset = dispatch.allocate(excess.shape, excess)
    grid, meta = launch("sequential", batch, channels)
    threshold_scan_forward_kernel[grid](
        excess,
        offset,
        v_th.contiguous(),
        decay.contiguous(),
        length,
        channels,
        COMPUTE=kernel_dtype(excess.dtype),
        **meta,
    )
    return offset


def threshold_scan_triton(
    excess: Tensor, v_th: float | Tensor, decay: float | Tensor, surrogate: str = "atan", detach_reset: bool = True
) -> tuple[Tensor, Tensor]:
    """Spikes and offsets (B, L, D) from ``excess`` (B, L, D); ``v_th``, ``decay`` scalars or per channel (D,)."""
    v_th, decay = per_channel(v_th, excess, "v_th"), per_channel(decay, excess, "decay")
    channels = excess.shape[2]
    offsets = _offsets(excess.detach(), v_th.expand(channels), decay.expand(channels))
    return reset_spikes(excess, offsets, v_th, decay, surrogate, detach_reset, linear_scan_triton), offsets
