"""The surrogate gradients of ``lra_snn.ops.surrogate`` as Triton device functions, for the kernels.

Same functions at the PyTorch defaults (docs/neurons.md, "Surrogate"): ATan with alpha = 2,
``1 / (1 + (pi v)^2)``; triangle ``max(0, 1 - |v|)``; rect of width 1, ``[|v| <= 1/2]``. A kernel
takes the surrogate as the compile-time code ``SURROGATE_CODES[name]``.
"""

from __future__ import annotations

import triton
import triton.language as tl

SURROGATE_CODES = {"atan": 0, "triangle": 1, "rect": 2}


@triton.jit
def surrogate_slope(v, SURROGATE: tl.constexpr):
    """dH/dv at ``v``: atan ``1 / (1 + (pi v)^2)``, triangle ``max(0, 1 - |v|)``, rect ``[|v| <= 1/2]``."""
    if SURROGATE == 0:
        slope = 1.0 / (1.0 + (3.141592653589793 * v) * (3.141592653589793 * v))
    elif SURROGATE == 1:
        slope = tl.maximum(1.0 - tl.abs(v), 0.0)
    else:
        slope = tl.where(tl.abs(v) <= 0.5, 1.0, 0.0)
    return slope
