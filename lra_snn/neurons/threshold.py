"""Memoryless threshold neuron: the spatial spiking neuron of the PRF paper's SD-TCM block.

PRF paper (arXiv 2410.03530; docs/neurons.md, section 2, "SD-TCM block"): ``S2 = H(X - V_th)``
with V_th = 0.5, a Heaviside with a surrogate gradient applied at each step on its own, with no
state carried between steps. Used inside ``lra_snn.models.sd_tcm.SDTCMBlock``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.neurons.base import Neuron
from lra_snn.ops.surrogate import SURROGATES, spike


class ThresholdSpike(Neuron):
    """Memoryless spiking neuron ``s_t = H(x_t - V_th)`` (surrogate gradient), no state between steps."""

    def __init__(self, d_model: int, *, v_th: float = 0.5, surrogate: str = "atan") -> None:
        super().__init__(d_model)
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {SURROGATES}")
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
