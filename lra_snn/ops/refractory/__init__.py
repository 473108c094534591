"""One boundary-compression iteration of the refractory LIF: dispatch, kernel and reference.

``refractory_backend`` picks "triton" for CUDA inputs (B, L, D) with per-channel (D,) ``v_th`` and
``rho``, else "torch" (``lra_snn.neurons.refractory`` then builds the traces by leaky
integration); ``explain_refractory`` gives the reason; ``refractory_iteration`` runs the kernel;
``refractory_iteration_sequential`` is the time-loop reference.
"""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.refractory.reference import refractory_iteration_sequential

__all__ = ["explain_refractory", "refractory_backend", "refractory_iteration", "refractory_iteration_sequential"]


def _kernel_problem(excess: Tensor, v_th: Tensor, rho: Tensor) -> str | None:
    if excess.dim() != 3:
        return f"the kernel takes excess of shape (B, L, D), got {tuple(excess.shape)}"
    channels = (excess.shape[2],)
    if v_th.shape != channels or rho.shape != channels:
        return f"v_th and rho must have shape {channels}, got {tuple(v_th.shape)} and {tuple(rho.shape)}"
    return None


def explain_refractory(excess: Tensor, v_th: Tensor, rho: Tensor) -> str | None:
    """Why the Triton iteration would not run on these inputs (None: it would)."""
    return dispatch.explain("refractory", [excess, v_th, rho], _kernel_problem(excess, v_th, rho))


def refractory_backend(excess: Tensor, v_th: Tensor, rho: Tensor, backend: str | None = None) -> str:
    """"torch" or "triton" for the boundary-compression iterations (see ``dispatch.select_backend``)."""
    return dispatch.select_backend("refractory", [excess, v_th, rho], backend, _kernel_problem(excess, v_th, rho))


def refractory_iteration(excess: Tensor, spikes: Tensor, v_th: Tensor, rho: Tensor, beta: float,
                         gamma: float) -> tuple[Tensor, Tensor, Tensor]:
    """Next iterate, reset and refractory traces from the Triton kernel (call after ``refractory_backend``)."""
    from lra_snn.ops.refractory.triton import refractory_iteration_triton
    return refractory_iteration_triton(excess, spikes, v_th, rho, beta, gamma)
