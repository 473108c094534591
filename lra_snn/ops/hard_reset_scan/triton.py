"""Triton path of the hard-reset LIF (SpikingSSMs, arXiv 2408.14909; docs/kernels.md, "Scan kernels in
Triton: the known-good recipe").

The reset-free potential ``u'`` by the linear-scan kernel (``lra_snn.ops.leaky_integrate.triton``),
then the kernel here: the offsets ``b_1 = 0``, ``b_{t+1} = decay * (u'_t if (u'_t - b_t) - V_th >= 0
else b_t)``, sequential in time, no autograd. One program per (batch, channel tile) walks time in
chunks; each chunk is loaded as one tile (many loads in flight) and its rows are taken in turn in
registers (``hard_reset_chunk``), as the threshold scan's kernel does. Read ``u'``, write ``b``. The
spikes and potentials then take their gradient as on the PyTorch path (``HardResetSpikes``), its
reverse scan running on the linear-scan kernel.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.hard_reset_scan.torch import HardResetSpikes
from lra_snn.ops.leaky_integrate.triton import leaky_integrate_triton
from lra_snn.ops.linear_scan.triton import linear_scan_triton
from lra_snn.ops.triton_common import chunk_at, kernel_dtype, kernel_scalars, launch, program_tile


@triton.jit
def hard_reset_chunk(reset_free, offset, v_th, decay, rows, CHUNK: tl.constexpr):
    """Offsets of one (CHUNK, BLOCK_D) chunk of ``reset_free`` from the offset before it, row by row in
    registers, and the offset after it."""
    offsets = tl.zeros_like(reset_free)
    for i in tl.static_range(CHUNK):
        row = rows[:, None] == i
        offsets = tl.where(row, offset[None, :], offsets)
        value = tl.sum(tl.where(row, reset_free, 0.0), axis=0)
        offset = decay * tl.where((value - offset) - v_th >= 0, value, offset)
    return offsets, offset


@triton.jit
def hard_reset_offsets_kernel(
    reset_free_ptr,
    offset_ptr,
    scalars_ptr,
    length,
    channels,
    COMPUTE: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    v_th = tl.load(scalars_ptr)
    decay = tl.load(scalars_ptr + 1)
    cols, col_ok, rows, base = program_tile(length, channels, CHUNK, BLOCK_D)
    offset = tl.zeros([BLOCK_D], dtype=COMPUTE)
    for start in range(0, length, CHUNK):
        _, ok, offsets = chunk_at(start, rows, cols, col_ok, base, length, channels, False)
        reset_free = tl.load(reset_free_ptr + offsets, mask=ok, other=0.0).to(COMPUTE)
        out, offset = hard_reset_chunk(reset_free, offset, v_th, decay, rows, CHUNK)
        tl.store(offset_ptr + offsets, out.to(offset_ptr.dtype.element_ty), mask=ok)


@torch.no_grad()
def _offsets(reset_free: Tensor, v_th: float, decay: float) -> Tensor:
    """Offsets (B, L, D) of the reset-free potential ``reset_free`` (B, L, D) from the kernel."""
    reset_free = reset_free.contiguous()
    batch, length, channels = reset_free.shape
    offset = dispatch.allocate(reset_free.shape, reset_free)
    grid, meta = launch("sequential", batch, channels)
    hard_reset_offsets_kernel[grid](
        reset_free,
        offset,
        kernel_scalars([v_th, decay], reset_free),
        length,
        channels,
        COMPUTE=kernel_dtype(reset_free.dtype),
        **meta,
    )
    return offset


def hard_reset_scan_triton(x: Tensor, v_th: float, decay: float, surrogate: str = "triangle") -> tuple[Tensor, Tensor]:
    """Spikes and potentials before the reset (B, L, D) of ``x`` (B, L, D)."""
    with torch.no_grad():
        reset_free = leaky_integrate_triton(x, decay)
    offsets = _offsets(reset_free, v_th, decay)
    v_th_t, decay_t = (torch.tensor(value, dtype=x.dtype, device=x.device) for value in (v_th, decay))
    return HardResetSpikes.apply(x, reset_free, offsets, v_th_t, decay_t, surrogate, linear_scan_triton)
