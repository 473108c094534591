"""Real first-order scan ``h_t = a_t h_{t-1} + b_t`` along time (docs/kernels.md, "What needs a kernel").

``linear_scan`` runs the Triton kernel (``triton.py``) on CUDA tensors of shape (B, L, D) with a
per-step (B, L, D) or per-channel (D,) decay, the compiled CPU path (``compiled.py``: numba loops over
time forward and in reverse time backward) on float32/float64 CPU tensors of the same shapes where numba
imports, else the PyTorch chunked scan (``torch.py``); ``naive.py`` is the time loop all are tested against.
"""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.linear_scan.torch import linear_scan_torch

__all__ = ["linear_scan"]


def _kernel_problem(a: Tensor, b: Tensor, h0: Tensor | None) -> str | None:
    """What the kernel (and the compiled loop) does not cover in these shapes, or None."""
    if b.dim() != 3:
        return f"the kernel takes b of shape (B, L, D), got {tuple(b.shape)}"
    if b.is_complex() or a.is_complex():
        return "complex tensors go through lra_snn.ops.complex_scan"
    channel = a.dim() == 1 and a.shape[0] == b.shape[2]
    if not (channel or a.shape == b.shape):
        return f"the kernel takes a per-channel (D,) or per-step {tuple(b.shape)} decay, got {tuple(a.shape)}"
    if h0 is not None and h0.shape != (b.shape[0], b.shape[2]):
        return f"h0 must have shape {(b.shape[0], b.shape[2])}, got {tuple(h0.shape)}"
    if len({a.dtype, b.dtype} | ({h0.dtype} if h0 is not None else set())) > 1:
        return "a, b and h0 must share one dtype"
    return None


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, backend: str | None = None) -> Tensor:
    """Solve ``h_t = a_t * h_{t-1} + b_t`` along dim 1 of ``b`` (B, L, ...), differentiable in a, b, h0.

    ``a`` broadcasts to ``b`` (per step ``(B, L, D)`` or per channel ``(D,)``); ``h0`` is the state
    before the first step (B, ...), zero when omitted. ``backend``: None (Triton on CUDA, else the
    compiled loop on float32/float64 CPU tensors, when possible), "torch", "triton" or "compiled"
    (``lra_snn.ops.dispatch``).
    """
    tensors = [a, b] + ([h0] if h0 is not None else [])
    problem = _kernel_problem(a, b, h0)  # the compiled loop covers the kernel's shapes
    choice = dispatch.select_backend("linear_scan", tensors, backend, problem, compiled_unsupported=problem)
    if choice == "triton":
        from lra_snn.ops.linear_scan.triton import linear_scan_triton

        return linear_scan_triton(a, b, h0)
    if choice == "compiled":
        from lra_snn.ops.linear_scan.compiled import linear_scan_compiled

        return linear_scan_compiled(a, b, h0)
    return linear_scan_torch(a, b, h0)
