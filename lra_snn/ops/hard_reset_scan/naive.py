"""The hard-reset LIF of SpikingSSMs as a plain time loop (Shen et al., AAAI 2025, arXiv 2408.14909;
docs/neurons.md, section 8): the definition the parallel paths are tested against.

``u_t = decay * u_{t-1} + x_t``, ``s_t = H(u_t - V_th)`` with a surrogate gradient, then the reset
``u_t <- (1 - s_t) u_t`` with ``(1 - s_t)`` detached (``u_0 = 0``). Autograd through the loop gives
the gradient of the definition: ``du_t/dx_j = decay^(t-j) prod_{k=j..t-1} (1 - s_k)``, cut at every spike.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.ops.surrogate import spike


def hard_reset_scan_naive(x: Tensor, v_th: float, decay: float, surrogate: str = "triangle") -> tuple[Tensor, Tensor]:
    """Spikes and potentials before the reset (B, L, D) of ``x`` (B, L, D), by a time loop."""
    after_reset = torch.zeros_like(x[:, 0])
    spikes, potentials = [], []
    for x_t in x.unbind(1):
        potential = decay * after_reset + x_t
        s_t = spike(potential - v_th, surrogate)
        after_reset = (1 - s_t.detach()) * potential
        spikes.append(s_t)
        potentials.append(potential)
    return torch.stack(spikes, 1), torch.stack(potentials, 1)
