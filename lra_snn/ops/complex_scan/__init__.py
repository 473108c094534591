"""Complex first-order scan ``z_t = a_t z_{t-1} + b_t`` along time (PRF's membrane; docs/kernels.md,
"What needs a kernel").

``complex_scan`` runs the Triton kernel (``triton.py``, real/imag split) on CUDA complex64/complex128
tensors of shape (B, L, D) with a per-step or per-channel (D,) decay, the compiled CPU path
(``compiled.py``: numba loops over time on the real and imaginary parts, forward and in reverse time
backward) on CPU tensors of the same kinds where numba imports, else the PyTorch chunked scan
(``torch.py``); ``naive.py`` is the time loop all are tested against.
"""

from __future__ import annotations

from torch import Tensor, complex64, complex128, view_as_real

from lra_snn.ops import dispatch
from lra_snn.ops.complex_scan.torch import complex_scan_torch

__all__ = ["complex_scan"]


def _kernel_problem(a: Tensor, b: Tensor, h0: Tensor | None) -> str | None:
    """What the kernel does not cover in these inputs, or None."""
    tensors = [a, b] + ([h0] if h0 is not None else [])
    if any(t.dtype not in (complex64, complex128) for t in tensors):
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


def complex_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, backend: str | None = None) -> Tensor:
    """Solve ``z_t = a_t z_{t-1} + b_t`` along dim 1 of complex ``b`` (B, L, D); differentiable.

    ``a`` is per step (B, L, D) or per channel (D,); ``h0`` (B, D) or None (zero). ``backend``:
    None (Triton on CUDA, else the compiled loop on CPU tensors, when possible), "torch", "triton" or
    "compiled" (``lra_snn.ops.dispatch``).
    """
    problem = _kernel_problem(a, b, h0)  # the compiled loop covers the kernel's inputs
    # the kernels see the real views, so the device and dtype checks run on them (none when out of scope)
    views = [] if problem is not None else [view_as_real(t) for t in [a, b] + ([h0] if h0 is not None else [])]
    choice = dispatch.select_backend("complex_scan", views, backend, problem, compiled_unsupported=problem)
    if choice == "triton":
        from lra_snn.ops.complex_scan.triton import complex_scan_triton

        return complex_scan_triton(a, b, h0)
    if choice == "compiled":
        from lra_snn.ops.complex_scan.compiled import complex_scan_compiled

        return complex_scan_compiled(a, b, h0)
    return complex_scan_torch(a, b, h0)
