"""Sequential reference of the fused DSN membrane and spikes (arXiv 2602.01133; neurons.md section 5).

From the conv logits ``a``: ``log alpha_t = logsigmoid(a_t) / tau``, ``h_t = alpha_t h_{t-1} +
(1 - alpha_t) x_t``, spikes ``clip(round(h_t), 0, N)`` (halves up) or binary ``H(h_t - 1/2)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def dsn_sequential(logits: Tensor, x: Tensor, tau: float, n_levels: int, binary: bool) -> tuple[Tensor, Tensor]:
    """Membrane ``h`` and spikes (B, L, D) from logits and inputs (B, L, D), by a time loop (no surrogate)."""
    log_alpha = F.logsigmoid(logits) / tau
    h = torch.zeros_like(x[:, 0])
    membrane = []
    for t in range(x.shape[1]):
        h = log_alpha[:, t].exp() * h - torch.expm1(log_alpha[:, t]) * x[:, t]
        membrane.append(h)
    h = torch.stack(membrane, 1)
    spikes = (h >= 0.5).to(x.dtype) if binary else torch.floor(h + 0.5).clamp(0, n_levels)
    return h, spikes
