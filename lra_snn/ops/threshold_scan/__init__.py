"""Threshold scan of soft-reset neurons (the reset offsets from the excess): dispatch and reference.

``threshold_scan_backend`` picks "triton" for CUDA inputs (B, L, D), else "torch" (the host loops of
``lra_snn.neurons.threshold_scan``); ``explain_threshold_scan`` gives the reason Triton is not used;
``threshold_scan_kernel`` runs the Triton kernel; ``threshold_scan_sequential`` is the time-loop reference.
"""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.threshold_scan.reference import threshold_scan_sequential

__all__ = ["explain_threshold_scan", "threshold_scan_backend", "threshold_scan_kernel", "threshold_scan_sequential"]


def _kernel_problem(excess: Tensor) -> str | None:
    if excess.dim() != 3:
        return f"the kernel takes excess of shape (B, L, D), got {tuple(excess.shape)}"
    return None


def explain_threshold_scan(excess: Tensor) -> str | None:
    """Why the Triton threshold scan would not run on ``excess`` (None: it would)."""
    return dispatch.explain("threshold_scan", [excess], _kernel_problem(excess))


def threshold_scan_backend(excess: Tensor, backend: str | None = None) -> str:
    """"torch" or "triton" for the threshold scan of ``excess`` (see ``dispatch.select_backend``)."""
    return dispatch.select_backend("threshold_scan", [excess], backend, _kernel_problem(excess))


def threshold_scan_kernel(excess: Tensor, v_th: Tensor, decay: Tensor) -> Tensor:
    """Offsets (B, L, D) from the Triton kernel; ``v_th``, ``decay`` per channel (D,) (call after the backend choice)."""
    from lra_snn.ops.threshold_scan.triton import threshold_scan_triton
    return threshold_scan_triton(excess, v_th, decay)
