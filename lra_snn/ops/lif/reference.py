"""Sequential reference of the fused decoupled-reset LIF (PRF paper arXiv 2410.03530; neurons.md section 1).

``u'_t = beta u'_{t-1} + x_t``, margin ``m_t = u'_t - V_th - b_t``, ``s_t = H(m_t)``,
``b_{t+1} = beta (b_t + V_th s_t)``: spikes, margins and the firing count per (batch, channel).
"""

from __future__ import annotations

import torch
from torch import Tensor


def lif_sequential(x: Tensor, beta: float, v_th: float) -> tuple[Tensor, Tensor, Tensor]:
    """Spikes and margins (B, L, D) and spike counts (B, D) of ``x`` (B, L, D), by a time loop."""
    potential = torch.zeros_like(x[:, 0])
    offset = torch.zeros_like(potential)
    spikes, margins = [], []
    for x_t in x.unbind(1):
        potential = beta * potential + x_t
        margin = potential - v_th - offset
        s_t = (margin >= 0).to(x.dtype)
        offset = beta * (offset + v_th * s_t)
        spikes.append(s_t)
        margins.append(margin)
    spikes = torch.stack(spikes, 1)
    return spikes, torch.stack(margins, 1), spikes.sum(1)
