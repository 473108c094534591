"""The DSN forward in one op (Huang et al., arXiv 2602.01133; docs/neurons.md, section 5): decay from
the causal-conv logits, the membrane scan and the integer or binary spikes.

``dsn`` runs the fused Triton kernel (``triton.py``) on CUDA tensors, a compiled time loop on
float32/float64 CPU tensors (``compiled.py``, numba; membrane and spikes bit-identical to the naive
loop's), else the PyTorch path (``torch.py``: decay, linear scan, spike function); ``naive.py`` is the
time loop all are tested against.
"""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.dsn.torch import dsn_torch

__all__ = ["dsn"]


def dsn(logits: Tensor, x: Tensor, tau: float, n_levels: int, binary: bool, backend: str | None = None) -> Tensor:
    """DSN spikes (B, L, D) from the decay logits ``a`` and inputs ``x`` (both (B, L, D)), differentiable in both.

    ``alpha_t = sigmoid(a_t) ** (1/tau)``, ``h_t = alpha_t h_{t-1} + (1 - alpha_t) x_t``, spikes
    ``clip(round(h_t), 0, n_levels)`` (straight-through gradient) or, when ``binary``,
    ``H(h_t - 1/2)`` (ATan surrogate). ``backend``: None (Triton on CUDA when possible, else the
    compiled loop on the CPU when numba imports), "torch", "triton" or "compiled"
    (``lra_snn.ops.dispatch``; the compiled loop takes logits and x of one dtype).
    """
    if x.dim() != 3 or logits.shape != x.shape:
        raise ValueError(
            f"dsn takes logits and x of one shape (B, L, D), got {tuple(logits.shape)} and {tuple(x.shape)}"
        )
    compiled_problem = None if logits.dtype == x.dtype else f"logits ({logits.dtype}) and x ({x.dtype}) differ in dtype"
    chosen = dispatch.select_backend("dsn", [logits, x], backend, compiled_unsupported=compiled_problem)
    if chosen == "triton":
        from lra_snn.ops.dsn.triton import dsn_triton

        return dsn_triton(logits, x, tau, n_levels, binary)
    if chosen == "compiled":
        from lra_snn.ops.dsn.compiled import dsn_compiled

        return dsn_compiled(logits, x, tau, n_levels, binary)
    return dsn_torch(logits, x, tau, n_levels, binary)
