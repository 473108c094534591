"""Sequential reference of the threshold scan (PRF paper arXiv 2410.03530, decoupled reset; neurons.md section 1).

From the excess ``e_t = u'_t - V_th`` of the reset-free potential: the reset offsets ``b_1 = 0``,
``b_{t+1} = decay (b_t + V_th s_t)`` with the spikes ``s_t = [e_t >= b_t]``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def threshold_scan_sequential(excess: Tensor, v_th: Tensor, decay: Tensor) -> Tensor:
    """Offsets ``b`` (B, L, D) from ``excess`` (B, L, D); ``v_th``, ``decay`` scalars or per channel (D,)."""
    offset = torch.zeros_like(excess[:, 0])
    offsets = []
    for excess_t in excess.unbind(1):
        offsets.append(offset)
        offset = decay * (offset + v_th * (excess_t >= offset).to(excess.dtype))
    return torch.stack(offsets, 1)
