"""Complex first-order scan ``z_t = a_t z_{t-1} + b_t`` along time (PRF's membrane), with dispatch.

The Triton kernel (``triton.py``, real/imag split) runs on CUDA complex64/complex128 tensors of
shape (B, L, D) with a per-step or per-channel (D,) decay; otherwise the PyTorch doubling scan of
``lra_snn.ops.linear_scan`` (which conjugates correctly in its backward) is the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.linear_scan import linear_scan_sequential, linear_scan_torch

__all__ = ["complex_scan", "complex_scan_sequential", "explain_complex_scan"]

complex_scan_sequential = linear_scan_sequential


def _kernel_shape_problem(a: Tensor, b: Tensor, h0: Tensor | None) -> str | None:
    """What the kernel does not cover in these inputs, or None."""
    tensors = [a, b] + ([h0] if h0 is not None else [])
    if any(t.dtype not in (torch.complex64, torch.complex128) for t in tensors):
        return f"complex_scan takes complex64/complex128 tensors, got {[t.dtype for t in tensors]}"
    if len({t.dtype for t in tensors}) > 1:
        return "a, b and h0 must share one dtype"
    if b.dim() != 3:
        return f"the kernel takes b of shape (B, L, D), got {tuple(b.shape)}"
    if not ((a.dim() == 1 and a.shape[0] == b.shape[2]) or a.shape == b.shape):
        return f"the kernel takes a per-channel (D,) or per-step {tuple(b.shape)} decay, got {tuple(a.shape)}"
    if h0 is not None and h0.shape != (b.shape[0], b.shape[2]):
        return f"h0 must have shape {(b.shape[0], b.shape[2])}, got {tuple(h0.shape)}"
    return None


def _kernel_views(a: Tensor, b: Tensor, h0: Tensor | None, problem: str | None) -> list[Tensor]:
    """The tensors as the kernel sees them (real views), for the device and dtype checks; none
    when the inputs are already out of the kernel's scope (``problem`` then is the reason)."""
    if problem is not None:
        return []
    return [torch.view_as_real(t) for t in [a, b] + ([h0] if h0 is not None else [])]


def explain_complex_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> str | None:
    """Why the Triton kernel would not run on these inputs (None: it would)."""
    problem = _kernel_shape_problem(a, b, h0)
    return dispatch.explain("complex_scan", _kernel_views(a, b, h0, problem), problem)


def complex_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, backend: str | None = None) -> Tensor:
    """Solve ``z_t = a_t z_{t-1} + b_t`` along dim 1 of complex ``b`` (B, L, D); differentiable.

    ``a`` is per step (B, L, D) or per channel (D,); ``h0`` (B, D) or None (zero). ``backend``:
    None (Triton on CUDA when possible), "torch" or "triton".
    """
    problem = _kernel_shape_problem(a, b, h0)
    choice = dispatch.select_backend("complex_scan", _kernel_views(a, b, h0, problem), backend, problem)
    if choice == "triton":
        from lra_snn.ops.complex_scan.triton import complex_scan_triton
        return complex_scan_triton(a, b, h0)
    return linear_scan_torch(a, b, h0)
