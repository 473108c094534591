"""Fused decoupled-reset LIF: dispatch between the Triton kernel and the neuron's PyTorch path.

``lif_backend`` picks "triton" for CUDA inputs when the kernel covers the options (detached
reset, scalar ``v_th``), else "torch" (``lra_snn.neurons.lif`` then runs leaky integration plus
``threshold_scan``); ``explain_lif`` gives the reason; ``fused_lif_triton`` is the kernel and
``lif_sequential`` the time-loop reference.
"""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.lif.reference import lif_sequential

__all__ = ["explain_lif", "lif_backend", "lif_sequential", "fused_lif"]


def _kernel_problem(x: Tensor, detach_reset: bool) -> str | None:
    if x.dim() != 3:
        return f"the kernel takes x of shape (B, L, D), got {tuple(x.shape)}"
    if not detach_reset:
        return ("detach_reset=False (gradient through the reset) is not fused; the neuron runs the primitives "
                "(leaky integration, threshold scan, reverse scan), each dispatched on its own")
    return None


def explain_lif(x: Tensor, detach_reset: bool = True) -> str | None:
    """Why the fused Triton LIF would not run on ``x`` (None: it would)."""
    return dispatch.explain("lif", [x], _kernel_problem(x, detach_reset))


def lif_backend(x: Tensor, detach_reset: bool, backend: str | None = None) -> str:
    """"torch" or "triton" for the LIF's parallel forward on ``x`` (see ``dispatch.select_backend``)."""
    return dispatch.select_backend("lif", [x], backend, _kernel_problem(x, detach_reset))


def fused_lif(x: Tensor, beta: float, v_th: float, surrogate: str) -> tuple[Tensor, Tensor]:
    """Spikes (B, L, D) and spike counts (B, D) from the Triton kernel (call after ``lif_backend``)."""
    from lra_snn.ops.lif.triton import fused_lif_triton
    return fused_lif_triton(x, beta, v_th, surrogate)
