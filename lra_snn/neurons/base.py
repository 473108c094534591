"""The interface every neuron follows (neurons.md, "Interface every neuron follows").

Input ``x`` is (B, L, D). ``forward`` is the parallel training form, ``forward_sequential``
the plain time loop (the definition), ``step`` one step of serial inference with an explicit
state. Each forward records the firing rate (mean spikes per neuron per step; integer spikes
count their value) for the sparsity and energy accounting.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class Neuron(nn.Module):
    """Base class: subclasses implement the three forms and call ``_record`` on their spikes."""

    def __init__(self) -> None:
        super().__init__()
        self.firing_rate: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def forward_sequential(self, x: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def init_state(self, batch: int, device: torch.device | None = None,
                   dtype: torch.dtype = torch.float32) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def step(self, x_t: Tensor, state: Any) -> tuple[Tensor, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def _record(self, spikes: Tensor) -> Tensor:
        self.firing_rate = spikes.detach().float().mean()
        return spikes

    @staticmethod
    def _check_input(x: Tensor) -> None:
        if x.dim() != 3:
            raise ValueError(f"neuron input must be (batch, length, channels), got shape {tuple(x.shape)}")

    def _check_channels(self, x: Tensor) -> None:
        """``_check_input`` plus: the channel count equals the neuron's ``d_model`` (per-channel parameters)."""
        self._check_input(x)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"{type(self).__name__} has d_model={self.d_model} channels, input has {x.shape[-1]} "
                             f"(shape {tuple(x.shape)})")
