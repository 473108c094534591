"""PRF spikes in one op (Parallel Resonate-and-Fire, arXiv 2410.03530; docs/neurons.md, section 2):
``s_t = H(Re z_t - V_th)`` of the membrane ``z_t = A z_{t-1} + Delta x_t`` (eq. 19,
``lra_snn.ops.prf_membrane``), with a surrogate gradient.

``prf_spikes`` runs, on float32/float64 CPU tensors where numba imports, one compiled loop over time
that writes the spikes and one in reverse time that forms the surrogate gradient of ``Re z`` in the
loop (``compiled.py``); else the membrane's Triton path (``triton.py``, on CUDA tensors) or its FFT
convolution (``torch.py``), then the PyTorch spike function. ``naive.py`` is the time loop all are
tested against.
"""

from __future__ import annotations

import math

from torch import Tensor, float32, float64

from lra_snn.ops import dispatch
from lra_snn.ops.prf_spikes.torch import prf_spikes_torch
from lra_snn.ops.surrogate import SURROGATES

__all__ = ["prf_spikes"]


def _kernel_problem(x: Tensor) -> str | None:
    if x.dtype not in (float32, float64):
        return f"the complex scan runs on complex64/complex128, so x must be float32/float64, got {x.dtype}"
    return None


def prf_spikes(
    x: Tensor,
    log_delta: Tensor,
    theta: Tensor,
    tau: float,
    v_th: float,
    surrogate: str = "atan",
    backend: str | None = None,
) -> Tensor:
    """Spikes ``H(Re z_t - V_th)`` (B, L, D) of real inputs ``x`` (B, L, D), in x's dtype, with the
    ``surrogate`` gradient reaching x, ``log_delta`` (``log Delta``) and ``theta``.

    ``log_delta`` and ``theta`` are per channel (D,) in ``x``'s dtype; ``tau > 0``. ``backend``: None
    (Triton on CUDA when possible, else the compiled loop on the CPU when numba imports), "torch" (FFT
    convolution), "triton" or "compiled" (``lra_snn.ops.dispatch``).
    """
    if x.dim() != 3 or log_delta.shape != (x.shape[2],) or theta.shape != (x.shape[2],):
        raise ValueError(
            f"prf_spikes takes x (B, L, D) and log_delta, theta (D,), got {tuple(x.shape)}, "
            f"{tuple(log_delta.shape)} and {tuple(theta.shape)}"
        )
    if not math.isfinite(v_th):
        raise ValueError(f"v_th must be finite, got {v_th}")
    if surrogate not in SURROGATES:
        raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {SURROGATES}")
    chosen = dispatch.select_backend("prf_spikes", [x], backend, _kernel_problem(x), compiled_unsupported=None)
    if chosen == "triton":
        from lra_snn.ops.prf_spikes.triton import prf_spikes_triton

        return prf_spikes_triton(x, log_delta, theta, tau, v_th, surrogate)
    if chosen == "compiled":
        from lra_snn.ops.prf_spikes.compiled import prf_spikes_compiled

        return prf_spikes_compiled(x, log_delta, theta, tau, v_th, surrogate)
    return prf_spikes_torch(x, log_delta, theta, tau, v_th, surrogate)
