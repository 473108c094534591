"""Sequence-mixing blocks of the shared backbone.

``S4DBlock`` is the S4D layer of docs/neurons.md section 6 (S4D -> GELU -> Dropout -> Linear D -> 2D ->
GLU); given a neuron factory it becomes the SpikingSSM-style block of section 3 (S4D -> spiking
neuron -> Dropout -> Linear D -> 2D -> GLU), so any registered neuron joins it without new code.
Residual connection and norm are applied by the backbone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lra_snn.models.s4d import S4D
from lra_snn.neurons.base import Neuron


class S4DBlock(nn.Module):
    """S4D convolution, pointwise nonlinearity (GELU or a spiking neuron), GLU channel mixer."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        init: str = "inv",
        bidirectional: bool = False,
        dropout: float = 0.0,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        neuron: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.ssm = S4D(d_model, d_state, init, bidirectional, dt_min, dt_max)
        self.activation = nn.GELU() if neuron is None else neuron(d_model=d_model)
        self.dropout = nn.Dropout(dropout)
        self.mix = nn.Linear(d_model, 2 * d_model)
        self.glu = nn.GLU(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.glu(self.mix(self.dropout(self.activation(self.ssm(x)))))

    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> tuple:
        """Step-form state: the S4D recurrence's and the neuron's (None for GELU)."""
        neuron = self.activation.init_state(batch, device, dtype) if isinstance(self.activation, Neuron) else None
        return self.ssm.init_state(batch, device, dtype), neuron

    def step(self, x_t: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        """One step (B, D) -> (B, D) of ``forward`` (``lra_snn.models.streaming``)."""
        ssm_state, neuron_state = state
        y, ssm_state = self.ssm.step(x_t, ssm_state)
        if isinstance(self.activation, Neuron):
            y, neuron_state = self.activation.step(y, neuron_state)
        else:
            y = self.activation(y)
        return self.glu(self.mix(self.dropout(y))), (ssm_state, neuron_state)
