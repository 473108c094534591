"""Threshold scan of soft-reset neurons, the decoupled reset (PRF paper, arXiv 2410.03530;
docs/neurons.md, section 1): spikes and reset offsets from the excess of the reset-free potential.

``threshold_scan`` runs the Triton kernel (``triton.py``) on CUDA tensors (B, L, D), the compiled CPU
path (``compiled.py``: one numba loop over time forward and one in reverse time backward, either reset)
on float32/float64 CPU tensors where numba imports, else the host loop of the PyTorch path
(``torch.py``: compiled or NumPy for float32/float64 CPU tensors, torch otherwise), whose coupled-reset
gradient (``detach_reset=False``) is one reverse linear scan on the same backend. ``naive.py`` is the
time loop all are tested against.
"""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.surrogate import SURROGATES
from lra_snn.ops.threshold_scan.torch import threshold_scan_torch

__all__ = ["threshold_scan"]


def threshold_scan(
    excess: Tensor,
    v_th: float | Tensor,
    decay: float | Tensor,
    surrogate: str = "atan",
    detach_reset: bool = True,
    backend: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Spikes ``s`` and reset offsets ``b`` (B, L, D) of a soft-reset neuron from its excess ``u' - V_th``.

    ``b_1 = 0``, ``b_{t+1} = decay (b_t + V_th s_t)``, ``s_t = H(excess_t - b_t)``; ``v_th`` and
    ``decay`` are scalars or per-channel (D,) tensors (constants here: no gradient reaches them).
    The offsets come from one pass over time without autograd. The spikes take the ``surrogate``
    gradient through ``excess``, and through the spikes in the reset as well when
    ``detach_reset=False`` (the coupled reset). ``backend``: None (Triton on CUDA, else the compiled
    loop on float32/float64 CPU tensors, when possible), "torch", "triton" or "compiled"
    (``lra_snn.ops.dispatch``).
    """
    if excess.dim() != 3:
        raise ValueError(f"threshold_scan expects (batch, length, channels), got shape {tuple(excess.shape)}")
    if surrogate not in SURROGATES:
        raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {SURROGATES}")
    choice = dispatch.select_backend("threshold_scan", [excess], backend, compiled_unsupported=None)
    if choice == "triton":
        from lra_snn.ops.threshold_scan.triton import threshold_scan_triton

        return threshold_scan_triton(excess, v_th, decay, surrogate, detach_reset)
    if choice == "compiled":
        from lra_snn.ops.threshold_scan.compiled import threshold_scan_compiled

        return threshold_scan_compiled(excess, v_th, decay, surrogate, detach_reset)
    return threshold_scan_torch(excess, v_th, decay, surrogate, detach_reset)
