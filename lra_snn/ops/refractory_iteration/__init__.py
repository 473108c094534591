"""One boundary-compression iteration of the refractory LIF (SPikE-SSM, arXiv 2410.17268, as
reconstructed in docs/neurons.md, section 3): both spike traces of an iterate and the next iterate.

``refractory_iteration`` runs the Triton kernel (``triton.py``) on CUDA inputs (B, L, D) with
per-channel (D,) ``v_th`` and ``rho``, a compiled time loop on float32/float64 CPU inputs of one dtype
(``compiled.py``, numba; bit-identical to the naive loop), else the PyTorch path (``torch.py``: traces
by leaky integration); ``naive.py`` is the time loop all are tested against. ``sequential.py`` runs
the whole neuron as one compiled time loop (the fixed point the iteration reaches), ``loop.py`` the
solver's time loop from a given step.
"""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.refractory_iteration.torch import refractory_iteration_torch

__all__ = ["refractory_iteration"]


def _kernel_problem(excess: Tensor, v_th: Tensor, rho: Tensor) -> str | None:
    channels = (excess.shape[2],)
    if v_th.shape != channels or rho.shape != channels:
        return f"v_th and rho must have shape {channels}, got {tuple(v_th.shape)} and {tuple(rho.shape)}"
    return None


def refractory_iteration(
    excess: Tensor, spikes: Tensor, v_th: Tensor, rho: Tensor, beta: float, gamma: float, backend: str | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Next iterate ``H(excess - V_th R - rho Q)``, reset trace ``R`` and refractory trace ``Q`` (B, L, D).

    From ``excess = u' - V_th`` and the iterate ``spikes`` (B, L, D): ``R_t = beta * sum_{i<t}
    beta^(t-1-i) s_i``, ``Q_t = sum_{i<t} gamma^(t-1-i) s_i``; ``v_th``, ``rho`` per channel (D,)
    (or broadcastable, PyTorch path only); ``beta``, ``gamma`` in [0, 1]. No autograd. ``backend``:
    None (Triton on CUDA when possible, else the compiled loop on the CPU when numba imports),
    "torch", "triton" or "compiled" (``lra_snn.ops.dispatch``).
    """
    if excess.dim() != 3 or excess.shape[1] == 0 or spikes.shape != excess.shape:
        raise ValueError(
            f"refractory_iteration takes excess and spikes of one shape (B, L >= 1, D), got "
            f"{tuple(excess.shape)} and {tuple(spikes.shape)}"
        )
    if not (0 <= beta <= 1 and 0 <= gamma <= 1):
        raise ValueError(f"beta and gamma must lie in [0, 1], got {beta} and {gamma}")
    problem = _kernel_problem(excess, v_th, rho)
    dtypes = {t.dtype for t in (excess, spikes, v_th, rho)}
    compiled_problem = problem or (
        None if len(dtypes) == 1 else f"the inputs differ in dtype ({sorted(map(str, dtypes))})"
    )
    tensors = [excess, spikes, v_th, rho]
    chosen = dispatch.select_backend("refractory_iteration", tensors, backend, problem, compiled_problem)
    if chosen == "triton":
        from lra_snn.ops.refractory_iteration.triton import refractory_iteration_triton

        return refractory_iteration_triton(excess, spikes, v_th, rho, beta, gamma)
    if chosen == "compiled":
        from lra_snn.ops.refractory_iteration.compiled import refractory_iteration_compiled

        return refractory_iteration_compiled(excess, spikes, v_th, rho, beta, gamma)
    return refractory_iteration_torch(excess, spikes, v_th, rho, beta, gamma)
