"""The PRF membrane in one op (Parallel Resonate-and-Fire, arXiv 2410.03530; docs/neurons.md, section 2):
``Re z`` of ``z_t = A z_{t-1} + Delta x_t``, ``A = exp(Delta (-1/tau + i theta))`` per channel.

``prf_membrane`` runs the complex recurrence on the Triton complex-scan kernel (``triton.py``) on
CUDA tensors, as a compiled time loop on float32/float64 CPU tensors (``compiled.py``, numba; its
``Re z`` bit-identical to the naive loop's where PyTorch's complex product is vectorised, equal to
rounding elsewhere), else the causal FFT convolution with the real PRF kernel (``torch.py``);
``naive.py`` is the time loop all are tested against.
"""

from __future__ import annotations

from torch import Tensor, float32, float64

from lra_snn.ops import dispatch
from lra_snn.ops.prf_membrane.torch import prf_membrane_torch

__all__ = ["prf_membrane"]


def _kernel_problem(x: Tensor) -> str | None:
    if x.dtype not in (float32, float64):
        return f"the complex scan runs on complex64/complex128, so x must be float32/float64, got {x.dtype}"
    return None


def prf_membrane(x: Tensor, log_delta: Tensor, theta: Tensor, tau: float, backend: str | None = None) -> Tensor:
    """``Re z`` (B, L, D) of real inputs ``x`` (B, L, D), differentiable in x, ``log_delta`` and ``theta``.

    ``log_delta`` (``log Delta``) and ``theta`` are per channel (D,) in ``x``'s dtype; ``tau > 0``.
    ``backend``: None (Triton on CUDA when possible, else the compiled loop on the CPU when numba
    imports), "torch" (FFT convolution), "triton" or "compiled" (``lra_snn.ops.dispatch``).
    """
    if x.dim() != 3 or log_delta.shape != (x.shape[2],) or theta.shape != (x.shape[2],):
        raise ValueError(
            f"prf_membrane takes x (B, L, D) and log_delta, theta (D,), got {tuple(x.shape)}, "
            f"{tuple(log_delta.shape)} and {tuple(theta.shape)}"
        )
    chosen = dispatch.select_backend("prf_membrane", [x], backend, _kernel_problem(x), compiled_unsupported=None)
    if chosen == "triton":
        from lra_snn.ops.prf_membrane.triton import prf_membrane_triton

        return prf_membrane_triton(x, log_delta, theta, tau)
    if chosen == "compiled":
        from lra_snn.ops.prf_membrane.compiled import prf_membrane_compiled

        return prf_membrane_compiled(x, log_delta, theta, tau)
    return prf_membrane_torch(x, log_delta, theta, tau)
