"""Ternary spikes with a dynamic threshold: the spiking input of the gated spiking unit (GSU).

Stan and Rhodes, "Learning Long Sequences in Spiking Neural Networks" (Scientific Reports 2024,
arXiv 2401.00955; docs/neurons.md, section 7). The GSU reads the real S4D output ``y`` both as it is
and as ternary spikes ``Ter(y)`` in {-1, 0, +1}; the PRF paper's account of it (arXiv 2410.03530,
Table 7) describes Ter as "the ternary output {-1, 0, 1} with a dynamic threshold". Per step and
example, over the D channels:

    Ter(y)_t = sign(y_t) * [ |y_t| >= delta * max_c |y_{t,c}| ],   delta = 0.15.

The threshold fraction 0.15 and the per-step maximum over channels follow a published
re-implementation of the GSU; the paper's own value was not available to us (assumed). The
function is memoryless over time, so the parallel, sequential and step forms apply the same rule,
all steps at once or one at a time. It carries no gradient: the GSU's gradient reaches ``y`` through
its identity path (``lra_snn.models.gsu``), which is the point of the unit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.neurons.base import Neuron


def ternarize(y: Tensor, fraction: float) -> Tensor:
    """``sign(y) * [|y| >= fraction * max |y|]``, the maximum over the last axis; no autograd."""
    with torch.no_grad():
        magnitude = y.abs()
        return torch.sign(y) * (magnitude >= fraction * magnitude.amax(-1, keepdim=True)).to(y.dtype)


class TernarySpike(Neuron):
    """Ternary spikes ``Ter(y)`` (module docstring) of (B, L, D) inputs; memoryless over time.

    The firing rate counts a spike of either sign once (mean of ``|s|``).
    """

    def __init__(self, d_model: int, *, fraction: float = 0.15) -> None:
        super().__init__(d_model)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(
                f"TernarySpike: fraction (of the per-step maximum |y|) must lie in (0, 1], got {fraction!r}"
            )
        self.fraction = float(fraction)

    def _record_ternary(self, spikes: Tensor) -> Tensor:
        self.firing_rate = spikes.detach().abs().float().mean()
        return spikes

    def forward(self, x: Tensor) -> Tensor:
        self._check_channels(x)
        return self._record_ternary(ternarize(x, self.fraction))

    def forward_sequential(self, x: Tensor) -> Tensor:
        self._check_channels(x)
        return self._record_ternary(torch.stack([ternarize(x_t, self.fraction) for x_t in x.unbind(1)], 1))

    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> None:
        """Memoryless: there is no state (``None``)."""
        return None

    def step(self, x_t: Tensor, state: None) -> tuple[Tensor, None]:
        return ternarize(x_t, self.fraction), state

    def macs_per_step(self) -> int:
        """0: a maximum and comparisons, no multiply-accumulate."""
        return 0
