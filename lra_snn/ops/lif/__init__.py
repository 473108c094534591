"""The decoupled-reset LIF forward in one op (PRF paper, arXiv 2410.03530; docs/neurons.md, section 1):
spikes and spike counts of a soft-reset LIF from its input currents.

``lif`` runs the Triton path (``triton.py``: one fused kernel when the reset is detached, else the
leaky-integration and threshold-scan kernels) on CUDA tensors, the compiled CPU path (``compiled.py``:
one fused numba loop over time forward and one in reverse time backward, for either reset) on
float32/float64 CPU tensors where numba imports, else the PyTorch path (``torch.py``: chunked leaky
integration and the threshold scan's host loop); ``naive.py`` is the time loop all are tested against.
"""

from __future__ import annotations

import math

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.lif.torch import lif_torch
from lra_snn.ops.surrogate import SURROGATES

__all__ = ["lif"]


def lif(
    x: Tensor, beta: float, v_th: float, surrogate: str = "atan", detach_reset: bool = True, backend: str | None = None
) -> tuple[Tensor, Tensor]:
    """Spikes (B, L, D) and spike counts (B, D) of the soft-reset LIF driven by ``x`` (B, L, D).

    ``u_t = beta (u_{t-1} - V_th s_{t-1}) + x_t``, ``s_t = H(u_t - V_th)``, solved in parallel by the
    decoupled reset. The spikes take the ``surrogate`` gradient through the reset-free potential,
    and through the reset as well when ``detach_reset=False``; the counts (in the arithmetic dtype,
    ``dispatch.compute_dtype``) carry no gradient. ``backend``: None (Triton on CUDA, else the
    compiled loop on float32/float64 CPU tensors, when possible), "torch", "triton" or "compiled"
    (``lra_snn.ops.dispatch``).
    """
    if x.dim() != 3 or x.shape[1] == 0:
        raise ValueError(f"lif expects (batch, length >= 1, channels), got shape {tuple(x.shape)}")
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")
    if not math.isfinite(v_th):
        raise ValueError(f"v_th must be finite, got {v_th}")
    if surrogate not in SURROGATES:
        raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {SURROGATES}")
    choice = dispatch.select_backend("lif", [x], backend, compiled_unsupported=None)
    if choice == "triton":
        from lra_snn.ops.lif.triton import lif_triton

        return lif_triton(x, beta, v_th, surrogate, detach_reset)
    if choice == "compiled":
        from lra_snn.ops.lif.compiled import lif_compiled

        return lif_compiled(x, beta, v_th, surrogate, detach_reset)
    return lif_torch(x, beta, v_th, surrogate, detach_reset)
