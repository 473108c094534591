"""Compiled CPU loop of the threshold scan's reset offsets (PRF paper, arXiv 2410.03530, decoupled
reset; docs/neurons.md, section 1): ``b_1 = 0``, ``b_{t+1} = decay * (b_t + V_th * [e_t >= b_t])``.

Compiled by numba on first use (once per dtype, cached on disk), so no C compiler is needed on the
user's machine. The loop walks each batch row in (B, L, D) order with the channels innermost (no
transposed copy), branch-free so that the compiler vectorises over channels, and computes
``(b + [e >= b] * V_th) * decay`` in the input's dtype, the same operations in the same order as the
NumPy loop: the offsets are bit-identical. ``offsets_kernel()`` is None where numba is not installed
(the PyTorch path then runs the NumPy loop).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from lra_snn.ops.host_compile import compile_host_loop


def _offsets_loop(excess: np.ndarray, offset: np.ndarray, v_th: np.ndarray, decay: np.ndarray) -> None:
    """Fill ``offset`` (B, L, D) from ``excess`` (B, L, D); ``v_th``, ``decay`` (D,), one dtype."""
    batch, length, channels = excess.shape
    for b in range(batch):
        for d in range(channels):
            offset[b, 0, d] = 0
        for t in range(length - 1):
            for d in range(channels):
                previous = offset[b, t, d]
                offset[b, t + 1, d] = (previous + (excess[b, t, d] >= previous) * v_th[d]) * decay[d]


@cache
def offsets_kernel() -> Callable[..., None] | None:
    """The numba-compiled ``_offsets_loop`` (``compile_host_loop``), or None without numba."""
    return compile_host_loop(_offsets_loop)
