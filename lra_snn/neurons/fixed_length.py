"""Running a fixed-length neuron on shorter sequences (PSN and masked PSN, docs/neurons.md, section 4).

A PSN of length T (Fang et al., arXiv 2304.12760: ``H = W X + b`` with a T x T weight over time)
accepts only inputs of exactly T steps, while data modules pad each batch to its own longest
sequence. ``PadToLength`` runs such a neuron (``fixed_length = True``) on any length up to T: it
appends zero steps up to T and returns the spikes of the original steps. The zoo builds it with
``lra_snn.models.zoo.fixed_length_neuron`` (config ``model/neuron=psn``, ``T`` from the data).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from lra_snn.neurons.base import Neuron


class PadToLength(Neuron):
    """Zero-pads (B, L, D) inputs with L <= T to the T steps of ``neuron`` and crops its spikes back to L.

    Padding is appended after the sequence, so a causal neuron's spikes on the first L steps do not
    depend on it. The firing rate is recorded over the L returned steps only. Streaming (``step``)
    and the cost of the dynamics (``macs_per_step``) are the wrapped neuron's own.
    """

    def __init__(self, neuron: Neuron) -> None:
        super().__init__(neuron.d_model)
        if not neuron.fixed_length or neuron.T is None:
            raise ValueError(
                f"PadToLength wraps a fixed-length neuron (fixed_length = True, built for T steps), "
                f"got {type(neuron).__name__}"
            )
        self.neuron = neuron
        self.T: int = neuron.T

    def _pad(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if x.shape[1] > self.T:
            raise ValueError(
                f"{type(self.neuron).__name__} was built for at most T={self.T} steps but the input has "
                f"{x.shape[1]} (shape {tuple(x.shape)}); set model.encoder.layer.neuron.T to the longest "
                f"sequence of the data (its max_length), or use sliding_psn, which takes any length"
            )
        return F.pad(x, (0, 0, 0, self.T - x.shape[1]))

    def forward(self, x: Tensor) -> Tensor:
        return self._record(self.neuron(self._pad(x))[:, : x.shape[1]])

    def forward_sequential(self, x: Tensor) -> Tensor:
        return self._record(self.neuron.forward_sequential(self._pad(x))[:, : x.shape[1]])

    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Any:
        return self.neuron.init_state(batch, device, dtype)

    def step(self, x_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        return self.neuron.step(x_t, state)

    def macs_per_step(self) -> int:
        return self.neuron.macs_per_step()

    def dynamics_ops_per_step(self) -> tuple[int, int]:
        return self.neuron.dynamics_ops_per_step()
