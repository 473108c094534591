"""The sliding PSN's hidden state as a plain time loop (Fang et al., "Parallel Spiking Neurons with
High Efficiency and Ability to Learn Long-term Dependencies", NeurIPS 2023, arXiv 2304.12760, the
sliding PSN; docs/neurons.md, section 4): the definition the other paths are tested against.

``H_t = sum_{i<k} w_i x_{t-k+1+i} + b`` per channel, inputs before t = 0 zero: the banded product
``H = W X + b`` over time whose band holds the k weights shared by every step and channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def banded_product_naive(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``H`` (B, L, D) of inputs ``x`` (B, L, D), window weights ``weight`` (k,) and the scalar ``bias``."""
    k = weight.shape[0]
    padded = F.pad(x, (0, 0, k - 1, 0))  # padded[:, t + i] = x_{t-k+1+i}
    steps = [torch.einsum("bkd,k->bd", padded[:, t : t + k], weight) + bias for t in range(x.shape[1])]
    return torch.stack(steps, 1)
