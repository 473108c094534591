"""Leaky integration ``h_t = decay * h_{t-1} + x_t`` with one constant decay (the reset-free
potential of the LIF neurons; PRF paper, arXiv 2410.03530, docs/neurons.md, section 1).

``leaky_integrate`` runs the linear-scan Triton kernel with a per-channel decay (``triton.py``) on
CUDA tensors, the linear scan's compiled loops (``compiled.py``, numba) on float32/float64 CPU tensors
where numba imports, else the chunked PyTorch path (``torch.py``); ``naive.py`` is the time loop all
are tested against.
"""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.leaky_integrate.torch import leaky_integrate_torch

__all__ = ["leaky_integrate"]


def leaky_integrate(x: Tensor, decay: float, chunk: int = 32, backend: str | None = None) -> Tensor:
    """``h_t = decay * h_{t-1} + x_t`` along dim 1 of ``x`` (B, L, D), h_0 = 0, differentiable in x.

    ``decay`` in [0, 1]; ``chunk``: the PyTorch path's chunk length. ``backend``: None (Triton on
    CUDA, else the compiled loop on float32/float64 CPU tensors, when possible), "torch", "triton" or
    "compiled" (``lra_snn.ops.dispatch``).
    """
    if x.dim() != 3 or x.shape[1] == 0:
        raise ValueError(f"leaky_integrate expects (batch, length >= 1, channels), got shape {tuple(x.shape)}")
    if not 0 <= decay <= 1:
        raise ValueError(f"decay must lie in [0, 1], got {decay}")
    choice = dispatch.select_backend("leaky_integrate", [x], backend, compiled_unsupported=None)
    if choice == "triton":
        from lra_snn.ops.leaky_integrate.triton import leaky_integrate_triton

        return leaky_integrate_triton(x, decay)
    if choice == "compiled":
        from lra_snn.ops.leaky_integrate.compiled import leaky_integrate_compiled

        return leaky_integrate_compiled(x, decay)
    return leaky_integrate_torch(x, decay, chunk)
