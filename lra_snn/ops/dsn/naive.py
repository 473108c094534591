"""The DSN membrane and spikes as a plain time loop (Huang et al., "Parallel Training in Spiking
Neural Networks", arXiv 2602.01133; docs/neurons.md, section 5): the definition the parallel paths
are tested against, and its pointwise pieces (decay, spike) shared with them and with the neuron.

From the causal-conv logits ``a``: ``alpha_t = sigmoid(a_t) ** (1/tau)`` (in log space:
``log alpha_t = logsigmoid(a_t) / tau``), ``h_t = alpha_t h_{t-1} + (1 - alpha_t) x_t``, spikes
``clip(round(h_t), 0, N)`` (halves up, straight-through gradient) or binary ``H(h_t - 1/2)`` (ATan).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lra_snn.ops.surrogate import IntegerSpike, spike


def decay_and_gain(a: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """``alpha = sigmoid(a) ** (1/tau)`` and ``1 - alpha``, both from ``logsigmoid`` (no underflow)."""
    log_alpha = F.logsigmoid(a) / tau
    return torch.exp(log_alpha), -torch.expm1(log_alpha)


def fire(h: Tensor, n_levels: int, binary: bool) -> Tensor:
    """Spikes from the membrane: integer levels ``clip(round(h), 0, N)`` or binary ``H(h - 0.5)``."""
    if binary:
        return spike(h - 0.5, "atan")
    return IntegerSpike.apply(h, n_levels)


def dsn_membrane_naive(logits: Tensor, x: Tensor, tau: float) -> Tensor:
    """Membrane ``h`` (B, L, D) from logits and inputs (B, L, D), by a time loop."""
    alpha, gain = decay_and_gain(logits, tau)
    h = torch.zeros_like(x[:, 0])
    membrane = []
    for t in range(x.shape[1]):
        h = alpha[:, t] * h + gain[:, t] * x[:, t]
        membrane.append(h)
    return torch.stack(membrane, 1)


def dsn_naive(logits: Tensor, x: Tensor, tau: float, n_levels: int, binary: bool) -> Tensor:
    """Spikes (B, L, D) from logits and inputs (B, L, D), differentiable through the loop."""
    return fire(dsn_membrane_naive(logits, x, tau), n_levels, binary)
