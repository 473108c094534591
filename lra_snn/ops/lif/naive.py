"""The decoupled-reset LIF as a plain time loop (PRF paper, arXiv 2410.03530; docs/neurons.md, section 1):
the definition the fused paths are tested against.

``u'_t = beta u'_{t-1} + x_t``, margin ``m_t = u'_t - V_th - b_t``, ``s_t = H(m_t)`` with a surrogate
gradient, ``b_{t+1} = beta (b_t + V_th s_t)``; the spikes in the reset carry gradient unless
``detach_reset``. Since ``u_t = u'_t - b_t``, this is the soft-reset LIF
``u_t = beta (u_{t-1} - V_th s_{t-1}) + x_t``, step for step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.ops.surrogate import spike


def lif_naive(
    x: Tensor, beta: float, v_th: float, surrogate: str = "atan", detach_reset: bool = True
) -> tuple[Tensor, Tensor]:
    """Spikes (B, L, D) and spike counts (B, D, no gradient) of ``x`` (B, L, D), by a time loop."""
    potential = torch.zeros_like(x[:, 0])
    offset = torch.zeros_like(potential)
    steps = []
    for x_t in x.unbind(1):
        potential = beta * potential + x_t
        s_t = spike(potential - v_th - offset, surrogate)
        offset = beta * (offset + v_th * (s_t.detach() if detach_reset else s_t))
        steps.append(s_t)
    spikes = torch.stack(steps, 1)
    return spikes, spikes.detach().sum(1)
