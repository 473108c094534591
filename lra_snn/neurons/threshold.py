"""Memoryless threshold neuron ``s_t = H(x_t - V_th)``: no state is carried between steps.

Two papers use it. The PRF paper's SD-TCM block (arXiv 2410.03530; docs/neurons.md, section 2)
fires its spatial neuron ``S2 = H(X - V_th)`` with V_th = 0.5 (inside
``lra_snn.models.sd_tcm.SDTCMBlock``). Binary S4D (Stan and Rhodes, "Learning Long Sequences in
Spiking Neural Networks", Scientific Reports 2024, arXiv 2401.00955; docs/neurons.md, section 7)
spikes the S4D output, ``y_t = H(C u_t + D x_t)`` (threshold 0), in place of the GELU: registry
name ``heaviside``, config ``conf/model/neuron/heaviside.yaml``. The three forms coincide (a
Heaviside per element, with a surrogate gradient), the step form simply per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor

from lra_snn.config.rules import NON_NEGATIVE, OneOf, Rule
from lra_snn.neurons.base import Neuron
from lra_snn.ops.surrogate import SURROGATES, spike


class ThresholdSpike(Neuron):
    """Memoryless spiking neuron ``s_t = H(x_t - V_th)`` (surrogate gradient), no state between steps.

    ``v_th`` defaults to the SD-TCM block's 0.5; Binary S4D's config sets 0.
    """

    option_rules: ClassVar[Mapping[str, Rule]] = {"v_th": NON_NEGATIVE, "surrogate": OneOf(SURROGATES)}

    def __init__(self, d_model: int, *, v_th: float = 0.5, surrogate: str = "atan") -> None:
        super().__init__(d_model)
        self.check_options(v_th=v_th, surrogate=surrogate)
        self.v_th = float(v_th)
        self.surrogate = surrogate

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self._record(spike(x - self.v_th, self.surrogate))

    def forward_sequential(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self._record(torch.stack([spike(x_t - self.v_th, self.surrogate) for x_t in x.unbind(1)], 1))

    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> None:
        """Memoryless: there is no state (``None``)."""
        return None

    def step(self, x_t: Tensor, state: None) -> tuple[Tensor, None]:
        return spike(x_t - self.v_th, self.surrogate), state

    def macs_per_step(self) -> int:
        """0: a comparison, no multiply-accumulate."""
        return 0
