"""PyTorch path of one boundary-compression iteration of the refractory LIF (SPikE-SSM, arXiv
2410.17268, as reconstructed in docs/neurons.md, section 3): both spike traces by chunked leaky
integration (``lra_snn.ops.leaky_integrate.torch``), then the next iterate."""

from __future__ import annotations

import torch
from torch import Tensor

from lra_snn.ops.leaky_integrate.torch import leaky_integrate_torch
from lra_snn.ops.refractory_iteration.naive import refractory_margin


def spike_trace(spikes: Tensor, decay: float) -> Tensor:
    """``h_t = sum_{i<t} decay^(t-1-i) s_i``: the trace of the spikes strictly before step t.

    A causal convolution of the spike train (B, L, D) with ``(0, 1, decay, decay^2, ...)``,
    i.e. the leaky integration ``h_t = decay * h_{t-1} + s_{t-1}``.
    """
    previous = torch.cat([torch.zeros_like(spikes[:, :1]), spikes[:, :-1]], 1)
    return leaky_integrate_torch(previous, decay)


@torch.no_grad()
def refractory_iteration_torch(
    excess: Tensor, spikes: Tensor, v_th: Tensor, rho: Tensor, beta: float, gamma: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Next iterate, reset trace and refractory trace (B, L, D) from ``spikes`` (B, L, D)."""
    reset_trace = beta * spike_trace(spikes, beta)
    refractory_trace = spike_trace(spikes, gamma)
    update = (refractory_margin(excess, v_th, rho, reset_trace, refractory_trace) >= 0).to(excess.dtype)
    return update, reset_trace, refractory_trace
