"""The sliding PSN's hidden state in one op (Fang et al., "Parallel Spiking Neurons with High
Efficiency and Ability to Learn Long-term Dependencies", NeurIPS 2023, arXiv 2304.12760, the sliding
PSN; docs/neurons.md, section 4): ``H_t = sum_{i<k} w_i x_{t-k+1+i} + b``, the banded product
``H = W X + b`` over time.

``banded_product`` runs the Triton kernel (``triton.py``) on CUDA tensors, a compiled time loop on
float32/float64 CPU tensors (``compiled.py``, numba), else the blocked Toeplitz product
(``torch.py``); ``naive.py`` is the time loop all are tested against.
"""

from __future__ import annotations

from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.banded_product.torch import banded_product_torch

__all__ = ["banded_product"]


def banded_product(x: Tensor, weight: Tensor, bias: Tensor, backend: str | None = None) -> Tensor:
    """``H`` (B, L, D) of inputs ``x`` (B, L >= 1, D), window weights ``weight`` (k,) shared by every step
    and channel (``weight[k-1]`` weighs the newest input) and the scalar ``bias`` (0-dim), all three of
    one dtype; inputs before t = 0 are zero. Differentiable in all three. ``backend``: None (Triton on CUDA when
    possible, else the compiled loop on the CPU when numba imports), "torch", "triton" or "compiled"
    (``lra_snn.ops.dispatch``).
    """
    if x.dim() != 3 or x.shape[1] == 0 or weight.dim() != 1 or weight.shape[0] == 0 or bias.dim() != 0:
        raise ValueError(
            f"banded_product takes x (B, L >= 1, D), weight (k >= 1,) and a 0-dim bias, got {tuple(x.shape)}, "
            f"{tuple(weight.shape)} and {tuple(bias.shape)}"
        )
    if weight.dtype != x.dtype or bias.dtype != x.dtype:
        raise ValueError(
            f"banded_product takes x, weight and bias of one dtype, got {x.dtype}, {weight.dtype}, {bias.dtype}"
        )
    chosen = dispatch.select_backend("banded_product", [x, weight, bias], backend, compiled_unsupported=None)
    if chosen == "triton":
        from lra_snn.ops.banded_product.triton import banded_product_triton

        return banded_product_triton(x, weight, bias)
    if chosen == "compiled":
        from lra_snn.ops.banded_product.compiled import banded_product_compiled

        return banded_product_compiled(x, weight, bias)
    return banded_product_torch(x, weight, bias)
