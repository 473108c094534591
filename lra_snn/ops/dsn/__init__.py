"""Fused DSN (decay from conv logits, scan, integer or binary spike): dispatch and kernels.

``dsn_backend`` picks "triton" for CUDA inputs of shape (B, L, D), else "torch" (the neuron then
runs ``decay_and_gain`` + ``linear_scan`` + its spike function); ``explain_dsn`` gives the reason;
``fused_dsn`` runs the Triton kernel; ``dsn_sequential`` is the time-loop reference.
"""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.dsn.reference import dsn_sequential

__all__ = ["dsn_backend", "dsn_sequential", "explain_dsn", "fused_dsn"]


def _kernel_problem(logits: Tensor, x: Tensor) -> str | None:
    if x.dim() != 3 or logits.shape != x.shape:
        return f"the kernel takes logits and x of one shape (B, L, D), got {tuple(logits.shape)}, {tuple(x.shape)}"
    return None


def explain_dsn(logits: Tensor, x: Tensor) -> str | None:
    """Why the fused Triton DSN would not run on these inputs (None: it would)."""
    return dispatch.explain("dsn", [logits, x], _kernel_problem(logits, x))


def dsn_backend(logits: Tensor, x: Tensor, backend: str | None = None) -> str:
    """"torch" or "triton" for the DSN's parallel forward (see ``dispatch.select_backend``)."""
    return dispatch.select_backend("dsn", [logits, x], backend, _kernel_problem(logits, x))


def fused_dsn(logits: Tensor, x: Tensor, tau: float, n_levels: int, binary: bool) -> Tensor:
    """DSN spikes (B, L, D) from the Triton kernel (call after ``dsn_backend``)."""
    from lra_snn.ops.dsn.triton import fused_dsn_triton
    return fused_dsn_triton(logits, x, tau, n_levels, binary)
