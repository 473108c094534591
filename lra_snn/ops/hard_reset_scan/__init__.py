"""The hard-reset LIF of SpikingSSMs in one op (Shen et al., AAAI 2025, arXiv 2408.14909;
docs/neurons.md, section 8): spikes and potentials of a LIF whose reset sets the potential to 0.

``hard_reset_scan`` runs the Triton path (``triton.py``: the linear-scan kernel for the reset-free
potential, a sequential kernel for the reset offsets) on CUDA tensors, the compiled CPU path
(``compiled.py``: the whole time loop fused in one numba loop forward, one in reverse time backward) on
float32/float64 CPU tensors where numba imports, else the PyTorch path (``torch.py``: chunked leaky
integration and a compiled host loop for the offsets); the Triton and PyTorch backwards are one reverse
linear scan on the same backend. ``naive.py`` is the time loop all are tested against.
"""

from __future__ import annotations

import math

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.hard_reset_scan.torch import hard_reset_scan_torch
from lra_snn.ops.surrogate import SURROGATES

__all__ = ["hard_reset_scan"]


def hard_reset_scan(
    x: Tensor, v_th: float, decay: float, surrogate: str = "triangle", backend: str | None = None
) -> tuple[Tensor, Tensor]:
    """Spikes ``s`` and potentials ``u`` (before the reset), (B, L, D), of the hard-reset LIF driven by ``x`` (B, L, D).

    ``u_t = decay * u_{t-1} + x_t``, ``s_t = H(u_t - V_th)``, then ``u_t <- (1 - s_t) u_t`` (``u_0 = 0``),
    the reset detached. The op takes the input currents ``x``, not the reset-free potential: its
    gradient is then one reverse scan straight to ``x``, ``dx_j = g_j + decay (1 - s_j) dx_{j+1}``
    with ``g`` the gradient reaching ``u`` (the spikes' ``surrogate`` slope times theirs, plus the
    potentials'), and the whole forward (leaky integration, offsets, spikes) is one function a single
    kernel can fuse, as ``lra_snn.ops.lif`` does. ``backend``: None (Triton on CUDA, else the compiled
    loop on float32/float64 CPU tensors, when possible), "torch", "triton" or "compiled"
    (``lra_snn.ops.dispatch``).
    """
    if x.dim() != 3 or x.shape[1] == 0:
        raise ValueError(f"hard_reset_scan expects (batch, length >= 1, channels), got shape {tuple(x.shape)}")
    if not 0 <= decay <= 1:
        raise ValueError(f"decay must lie in [0, 1], got {decay}")
    if not math.isfinite(v_th):
        raise ValueError(f"v_th must be finite, got {v_th}")
    if surrogate not in SURROGATES:
        raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {SURROGATES}")
    choice = dispatch.select_backend("hard_reset_scan", [x], backend, compiled_unsupported=None)
    if choice == "triton":
        from lra_snn.ops.hard_reset_scan.triton import hard_reset_scan_triton

        return hard_reset_scan_triton(x, v_th, decay, surrogate)
    if choice == "compiled":
        from lra_snn.ops.hard_reset_scan.compiled import hard_reset_scan_compiled

        return hard_reset_scan_compiled(x, v_th, decay, surrogate)
    return hard_reset_scan_torch(x, v_th, decay, surrogate)
