"""Pieces shared by the Triton kernels of ``lra_snn.ops`` (docs/kernels.md, "Scan kernels
in Triton: the known-good recipe").

Device functions: ``combine_affine`` (the scan operator of ``h -> a h + b``), ``scan_chunk`` (one
chunk of a first-order scan with its carry), ``last_row``. Host helpers: the arithmetic dtype,
scalar parameters as a tensor, and the launch grid and meta-parameters of a tile
(``lra_snn.ops.tiles``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.tiles import tile


def kernel_scalars(values: list[float], like: Tensor) -> Tensor:
    """Scalar kernel parameters as a tensor in the arithmetic dtype (a Python float argument
    would reach the kernel as float32, too coarse for float64 inputs)."""
    return torch.tensor(values, dtype=dispatch.compute_dtype(like.dtype), device=like.device)


def kernel_dtype(dtype: torch.dtype):
    """The Triton arithmetic dtype for tensors of ``dtype``."""
    return tl.float64 if dispatch.compute_dtype(dtype) == torch.float64 else tl.float32


def launch(kind: str, batch: int, channels: int) -> tuple[tuple[int, int], dict[str, int]]:
    """Grid (batch, channel tiles) and meta-parameters (CHUNK, BLOCK_D, num_warps) for a kernel of ``kind``."""
    shape = tile(kind)
    grid = (batch, triton.cdiv(channels, shape.block_d))
    return grid, {"CHUNK": shape.chunk, "BLOCK_D": shape.block_d, "num_warps": shape.num_warps}


@triton.jit
def combine_affine(a_left, b_left, a_right, b_right):
    """Compose two steps ``h -> a h + b`` (left first)."""
    return a_left * a_right, a_right * b_left + b_right


@triton.jit
def last_row(values, rows, CHUNK: tl.constexpr):
    """The row ``CHUNK - 1`` of a (CHUNK, BLOCK_D) tile."""
    return tl.sum(tl.where(rows[:, None] == CHUNK - 1, values, 0.0), axis=0)


@triton.jit
def scan_chunk(a, b, carry, rows, CHUNK: tl.constexpr):
    """``h`` of one (CHUNK, BLOCK_D) chunk of ``h_t = a_t h_{t-1} + b_t`` from the state ``carry``
    before it, and the chunk's last state (padding rows need ``a = 1, b = 0``)."""
    a_prod, h = tl.associative_scan((a, b), 0, combine_affine)
    h = h + a_prod * carry[None, :]
    return h, last_row(h, rows, CHUNK)


@triton.jit
def program_tile(length, channels, CHUNK: tl.constexpr, BLOCK_D: tl.constexpr):
    """This program's channels, which of them exist, the row indices of a chunk, and the offset of
    its batch element in a contiguous (B, L, D) tensor (grid: batch x channel tiles)."""
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    return cols, cols < channels, tl.arange(0, CHUNK), tl.program_id(0) * length * channels


@triton.jit
def chunk_at(start, rows, cols, col_ok, base, length, channels, REVERSED: tl.constexpr):
    """Time steps of the chunk ``start`` rows from the first (the last when ``REVERSED``) step, the
    mask of the elements that exist, and their offsets in the (B, L, D) tensor."""
    if REVERSED:
        t = length - 1 - (start + rows)
        ok = (t >= 0)[:, None] & col_ok[None, :]
    else:
        t = start + rows
        ok = (t < length)[:, None] & col_ok[None, :]
    return t, ok, base + t[:, None] * channels + cols[None, :]
