"""The gated spiking unit (GSU), Binary S4D's feature mixer (docs/neurons.md, section 7).

Stan and Rhodes, "Learning Long Sequences in Spiking Neural Networks" (Scientific Reports 2024,
arXiv 2401.00955), as the PRF paper tabulates it (arXiv 2410.03530, Table 7, row "GSU"): on the real
S4D output ``y_t`` (D channels), with one weight matrix ``W`` (D x D) and biases ``b``, ``c``,

    m_t = Ter(y_t) W + b         ternary spikes through real weights: additions only
    n_t = y_t Ter(W) + c         real values through ternary weights: additions only
    out_t = n_t * m_t            (the block then applies GELU)

``Ter`` is the dynamic-threshold ternarisation of ``lra_snn.neurons.ternary`` (for ``W``: over all
its entries). Neither ternarisation carries a gradient: ``y`` is trained through the identity path
``y Ter(W)``, which does not saturate, and ``W`` through ``Ter(y) W``. ``W`` is initialised like
``nn.Linear`` (Kaiming-uniform, a = sqrt 5), ``b`` and ``c`` uniform in +-1/sqrt(D).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lra_snn.neurons.ternary import TernarySpike, ternarize


class GatedSpikingUnit(nn.Module):
    """``(y Ter(W) + c) * (Ter(y) W + b)`` on (B, L, D) inputs; ``fraction`` is Ter's threshold fraction."""

    def __init__(self, d_model: int, fraction: float = 0.15) -> None:
        super().__init__()
        self.spike = TernarySpike(d_model, fraction=fraction)
        self.weight = nn.Parameter(torch.empty(d_model, d_model))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(d_model)
        self.bias_spikes = nn.Parameter(torch.empty(d_model).uniform_(-bound, bound))
        self.bias_values = nn.Parameter(torch.empty(d_model).uniform_(-bound, bound))

    def ternary_weight(self) -> Tensor:
        """``Ter(W)``: the ternarisation over all entries of ``W`` (no gradient)."""
        return ternarize(self.weight.reshape(1, -1), self.spike.fraction).view_as(self.weight)

    def forward(self, y: Tensor) -> Tensor:
        """(B, L, D) -> (B, L, D); one step (B, D) -> (B, D) too (the unit is pointwise in time)."""
        spikes = self.spike(y) if y.dim() == 3 else self.spike.step(y, None)[0]
        gate = spikes @ self.weight + self.bias_spikes
        values = y @ self.ternary_weight() + self.bias_values
        return values * gate
