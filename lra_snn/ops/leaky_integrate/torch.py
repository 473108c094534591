"""PyTorch path of leaky integration ``h_t = decay * h_{t-1} + x_t``, in chunks (docs/neurons.md, section 1).

Within each chunk of ``chunk`` steps a product with the lower-triangular matrix ``decay^(i-j)``,
then the chunk-end states are carried across chunks by a short linear scan (``decay^chunk`` per
chunk). Fewer passes over memory than a doubling scan for a constant decay.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.ops.linear_scan.torch import linear_scan_torch


def leaky_integrate_torch(x: Tensor, decay: float, chunk: int = 32) -> Tensor:
    """``h`` (B, L, D) of ``x`` (B, L >= 1, D), h_0 = 0, differentiable in x; ``decay`` in [0, 1]."""
    batch, length, channels = x.shape
    size = min(chunk, length)
    chunks = -(-length // size)
    blocks = torch.nn.functional.pad(x, (0, 0, 0, chunks * size - length)).view(batch, chunks, size, channels)
    index = torch.arange(size, device=x.device)
    lag = index.unsqueeze(1) - index.unsqueeze(0)
    powers = torch.tensor(decay, dtype=x.dtype, device=x.device) ** lag.clamp_min(0)
    within = torch.matmul(torch.where(lag >= 0, powers, torch.zeros_like(powers)), blocks)
    decay_chunk = torch.full((channels,), decay**size, dtype=x.dtype, device=x.device)
    ends = linear_scan_torch(decay_chunk, within[:, :, -1])
    carried = torch.cat([torch.zeros_like(ends[:, :1]), ends[:, :-1]], 1)
    entry_decay = torch.tensor(decay, dtype=x.dtype, device=x.device) ** (index + 1).to(x.dtype)
    h = within + entry_decay.view(1, 1, size, 1) * carried.unsqueeze(2)
    return h.reshape(batch, chunks * size, channels)[:, :length]
