"""Tile shapes of the Triton kernels (docs/kernels.md, "Scan kernels in Triton: the known-good recipe").

Every kernel runs one program per (batch, tile of ``block_d`` channels) and walks time in chunks
of ``chunk`` steps with ``num_warps`` warps. Two kinds of kernel:

- ``"scan"``: chunked ``tl.associative_scan`` plus a carry (linear / complex scans, the DSN, the
  LIF backward, the refractory traces); long chunks keep many loads in flight.
- ``"sequential"``: the LIF threshold scan, which must step through time; a chunk is loaded as
  one tile and its rows are taken in turn in registers, so the cost per row grows with ``chunk``.

Under the Triton interpreter the tiles are small (every tile costs Python work there).
``override_tiles`` swaps them for a block of code, which is how ``scripts/bench_gpu.py`` sweeps
tile shapes on a GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from lra_snn.ops import dispatch


@dataclass(frozen=True)
class Tile:
    """Time steps per chunk, channels per program, warps per program."""

    chunk: int
    block_d: int
    num_warps: int

    def __post_init__(self) -> None:
        for name in ("chunk", "block_d", "num_warps"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"Tile.{name} must be a power of two, got {value}")


GPU_TILES = {"scan": Tile(chunk=128, block_d=32, num_warps=4), "sequential": Tile(chunk=16, block_d=32, num_warps=1)}
KINDS = tuple(GPU_TILES)
INTERPRETER_TILE = Tile(chunk=16, block_d=16, num_warps=1)
_overrides: dict[str, Tile] = {}


def tile(kind: str) -> Tile:
    """The tile for kernels of ``kind`` ("scan" | "sequential"): an override, else the default."""
    if kind not in KINDS:
        raise ValueError(f"unknown kernel kind {kind!r}; choose one of {KINDS}")
    if kind in _overrides:
        return _overrides[kind]
    return INTERPRETER_TILE if dispatch.interpreter_on() else GPU_TILES[kind]


@contextlib.contextmanager
def override_tiles(**tiles: Tile) -> Iterator[None]:
    """Use these tiles (by kind) inside the block, e.g. ``override_tiles(scan=Tile(256, 32, 8))``."""
    unknown = set(tiles) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kernel kinds {sorted(unknown)}; choose from {KINDS}")
    saved = dict(_overrides)
    _overrides.update(tiles)
    try:
        yield
    finally:
        _overrides.clear()
        _overrides.update(saved)
