"""The PRF paper's spike-driven token and channel mixer, SD-TCM (arXiv 2410.03530; docs/neurons.md, section 2).

On input U (B, L, D):

1. ``S = N(U)``, a temporal spiking neuron (PRF by default); bidirectional:
   ``concat(N_f(U), flip(N_b(flip(U))))``, width 2D;
2. ``X = U + Linear(Dropout(S))``, the membrane shortcut, back to width D;
3. ``S2 = H(X - 0.5) * exp(a)``, a memoryless spiking neuron (``lra_snn.neurons.threshold``) scaled
   by a trainable amplitude ``a`` (init 0, tagged "dynamics": lr 1e-3, weight decay 0);
4. ``out = X + Linear(Dropout(S2))``.

No norm or GLU inside; norm and pre/post-norm come from the backbone, whose residual connection
wraps every block (so the block input enters the block output once through the shortcut of step 2
and once more through the backbone's residual). The amplitude is applied folded into the weights of
the Linear of step 4, as at inference, so that Linear reads binary spikes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lra_snn.neurons.base import Neuron
from lra_snn.neurons.threshold import ThresholdSpike
from lra_snn.optim.groups import tag


class AmplitudeLinear(nn.Linear):
    """``Linear(s * exp(a))`` computed as ``(W * exp(a)) s + b``: a spike amplitude folded into the weights.

    ``a`` is a trainable scalar, init 0, tagged "dynamics". The layer reads the unscaled spikes
    ``s``, as it would at inference after folding.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.amplitude = tag(nn.Parameter(torch.zeros(())), "dynamics")

    def forward(self, spikes: Tensor) -> Tensor:
        return F.linear(spikes, self.weight * self.amplitude.exp(), self.bias)


class SDTCMBlock(nn.Module):
    """SD-TCM: temporal spiking neuron, membrane shortcut, spatial spiking neuron with amplitude.

    ``neuron(d_model=...)`` builds the temporal neuron (config ``model/neuron``; PRF in the paper);
    ``bidirectional=True`` adds a second one reading the reversed sequence (causal otherwise).
    """

    def __init__(
        self,
        d_model: int,
        neuron: Callable[..., nn.Module],
        bidirectional: bool = False,
        dropout: float = 0.0,
        spatial_threshold: float = 0.5,
        surrogate: str = "atan",
    ) -> None:
        super().__init__()
        self.bidirectional = bidirectional
        self.temporal = neuron(d_model=d_model)
        self.temporal_backward = neuron(d_model=d_model) if bidirectional else None
        self.dropout = nn.Dropout(dropout)
        self.token_mix = nn.Linear((2 if bidirectional else 1) * d_model, d_model)
        self.spatial = ThresholdSpike(d_model, v_th=spatial_threshold, surrogate=surrogate)
        self.channel_mix = AmplitudeLinear(d_model, d_model)

    def temporal_spikes(self, u: Tensor) -> Tensor:
        """Step 1: ``N(U)`` (B, L, D), or ``concat(N_f(U), flip(N_b(flip(U))))`` (B, L, 2D)."""
        forward_spikes = self.temporal(u)
        if self.temporal_backward is None:
            return forward_spikes
        return torch.cat([forward_spikes, self.temporal_backward(u.flip(1)).flip(1)], -1)

    def forward(self, u: Tensor) -> Tensor:
        x = u + self.token_mix(self.dropout(self.temporal_spikes(u)))
        return x + self.channel_mix(self.dropout(self.spatial(x)))

    def _temporal_neuron(self) -> Neuron:
        if self.temporal_backward is not None:
            raise ValueError("a bidirectional SD-TCM block reads later steps and cannot run step by step")
        assert isinstance(self.temporal, Neuron)
        return self.temporal

    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Any:
        """Step-form state: the temporal neuron's (the spatial neuron is memoryless); causal blocks only."""
        return self._temporal_neuron().init_state(batch, device, dtype)

    def step(self, u_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step (B, D) -> (B, D) of ``forward`` (``lra_snn.models.streaming``)."""
        spikes, state = self._temporal_neuron().step(u_t, state)
        x = u_t + self.token_mix(self.dropout(spikes))
        return x + self.channel_mix(self.dropout(self.spatial.step(x, None)[0])), state
