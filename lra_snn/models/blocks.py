"""Sequence-mixing blocks of the shared backbone.

``S4DBlock`` is the S4D layer of docs/neurons.md section 6 (S4D -> GELU -> Dropout -> Linear D -> 2D ->
GLU); given a neuron factory it becomes the SpikingSSM-style block of section 3 (S4D -> spiking
neuron -> Dropout -> Linear D -> 2D -> GLU), so any registered neuron joins it without new code.
``mixer="gsu"`` replaces the Linear + GLU by the gated spiking unit of Binary S4D + GSU (section 7:
S4D -> Dropout -> GSU -> GELU; Stan and Rhodes, arXiv 2401.00955). Residual connection and norm are
applied by the backbone. With ``learnable_vth``, ``trainable_B``, ``init="lin"`` and ``tie_dropout`` it is
SpikingSSMs' SS4D layer (Shen et al., arXiv 2408.14909): the S4D output is divided by a learnable
per-channel threshold ``exp(ln_vth)`` (``ln_vth`` initialised to 0) before the neuron, and dropout
masks whole channels over time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lra_snn.models.dropout import dropout as make_dropout
from lra_snn.models.gsu import GatedSpikingUnit
from lra_snn.models.s4d import S4D
from lra_snn.neurons.base import Neuron

MIXERS = ("glu", "gsu")


class S4DBlock(nn.Module):
    """S4D convolution, pointwise nonlinearity (GELU or a spiking neuron), channel mixer.

    ``mixer="glu"`` (default): Linear D -> 2D and GLU. ``mixer="gsu"``: the gated spiking unit, then
    GELU; without a neuron the S4D output reaches the GSU unchanged (no GELU before it).
    """

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
        mixer: str = "glu",
        trainable_B: bool = False,
        learnable_vth: bool = False,
        tie_dropout: bool = False,
    ) -> None:
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"S4DBlock: unknown mixer {mixer!r} (model.encoder.layer.mixer); choose one of {MIXERS}")
        self.ssm = S4D(d_model, d_state, init, bidirectional, dt_min, dt_max, trainable_B)
        # SpikingSSMs' learnable threshold: the neuron sees y / exp(ln_vth), one per channel (default group)
        self.ln_vth = nn.Parameter(torch.zeros(d_model)) if learnable_vth else None
        if neuron is not None:
            self.activation: nn.Module = neuron(d_model=d_model)
        else:
            self.activation = nn.GELU() if mixer == "glu" else nn.Identity()
        self.dropout = make_dropout(dropout, tie_dropout)
        self.mix: nn.Module = nn.Linear(d_model, 2 * d_model) if mixer == "glu" else GatedSpikingUnit(d_model)
        self.output: nn.Module = nn.GLU(dim=-1) if mixer == "glu" else nn.GELU()

    def scaled(self, y: Tensor) -> Tensor:
        """The S4D output as the neuron sees it: divided by the learnable threshold when there is one."""
        return y if self.ln_vth is None else y / self.ln_vth.exp()

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.mix(self.dropout(self.activation(self.scaled(self.ssm(x))))))

    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> tuple:
        """Step-form state: the S4D recurrence's and the neuron's (None for GELU)."""
        neuron = self.activation.init_state(batch, device, dtype) if isinstance(self.activation, Neuron) else None
        return self.ssm.init_state(batch, device, dtype), neuron

    def step(self, x_t: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        """One step (B, D) -> (B, D) of ``forward`` (``lra_snn.models.streaming``)."""
        ssm_state, neuron_state = state
        y, ssm_state = self.ssm.step(x_t, ssm_state)
        y = self.scaled(y)
        if isinstance(self.activation, Neuron):
            y, neuron_state = self.activation.step(y, neuron_state)
        else:
            y = self.activation(y)
        return self.output(self.mix(self.dropout(y))), (ssm_state, neuron_state)
