"""The threshold scan of soft-reset neurons as a plain time loop (PRF paper, arXiv 2410.03530,
decoupled reset; docs/neurons.md, section 1): the definition its parallel paths are tested against.

From the excess ``e_t = u'_t - V_th`` of the reset-free potential: the reset offsets ``b_1 = 0``,
``b_{t+1} = decay (b_t + V_th s_t)`` and the spikes ``s_t = H(e_t - b_t)`` with a surrogate
gradient. Autograd through the loop gives the gradient of the definition: through ``e`` only when
the reset is detached, through the spikes in the reset as well when it is not.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.ops.surrogate import spike


def threshold_scan_naive(
    excess: Tensor, v_th: float | Tensor, decay: float | Tensor, surrogate: str = "atan", detach_reset: bool = True
) -> tuple[Tensor, Tensor]:
    """Spikes and offsets (B, L, D) from ``excess`` (B, L, D); ``v_th``, ``decay`` scalars or per channel
    (D,). The offsets carry no gradient."""
    offset = torch.zeros_like(excess[:, 0])
    spikes, offsets = [], []
    for excess_t in excess.unbind(1):
        offsets.append(offset)
        s_t = spike(excess_t - offset, surrogate)
        spikes.append(s_t)
        offset = decay * (offset + v_th * (s_t.detach() if detach_reset else s_t))
    return torch.stack(spikes, 1), torch.stack(offsets, 1).detach()
