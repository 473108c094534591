"""The surrogate gradients of ``lra_snn.ops.surrogate`` as numba-compiled scalar functions, for the
compiled CPU loops (each op's ``compiled.py``); imported only where numba is installed.

Same functions at the PyTorch defaults (docs/neurons.md, "Surrogate"): ATan with alpha = 2
(Fang et al., ICCV 2021), ``1 / (1 + (pi v)^2)``; triangle ``max(0, 1 - |v|)``; rect of width 1,
``[|v| <= 1/2]``. A loop takes the surrogate as the integer ``SURROGATE_CODES[name]``. Each
function computes in the dtype of its argument (float32 stays float32).
"""

from __future__ import annotations

import math

from lra_snn.ops.host_compile import host_function

SURROGATE_CODES = {"atan": 0, "triangle": 1, "rect": 2}


@host_function(error_model="numpy")  # no zero-division check: the loops stay vectorised
def surrogate_slope(v: float, code: int) -> float:
    """dH/dv at the scalar ``v`` for the surrogate ``code``: atan ``1 / (1 + (pi v)^2)``, triangle
    ``max(0, 1 - |v|)``, rect ``[|v| <= 1/2]``."""
    dtype = type(v)
    one, zero = dtype(1), dtype(0)
    if code == 0:
        scaled = dtype(math.pi) * v
        return one / (one + scaled * scaled)
    if code == 1:
        return max(one - abs(v), zero)
    return one if abs(v) <= dtype(0.5) else zero
