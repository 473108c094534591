"""One boundary-compression iteration of the refractory LIF as a time loop (SPikE-SSM, arXiv
2410.17268, as reconstructed in docs/neurons.md, section 3): the definition the parallel paths are
tested against, and the margin they share with the neuron.

From a spike train ``s``: reset trace ``R_t = beta * sum_{i<t} beta^(t-1-i) s_i``, refractory
trace ``Q_t = sum_{i<t} gamma^(t-1-i) s_i`` and the next iterate ``H(excess_t - V_th R_t - rho Q_t)``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def refractory_margin(
    excess: Tensor, v_th: Tensor, rho: Tensor, reset_trace: Tensor, refractory_trace: Tensor
) -> Tensor:
    """``u'_t - V_th - V_th * reset_trace_t - rho * refractory_trace_t``, with ``excess = u' - V_th``."""
    return excess - v_th * reset_trace - rho * refractory_trace


def refractory_iteration_naive(
    excess: Tensor, spikes: Tensor, v_th: Tensor, rho: Tensor, beta: float, gamma: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Next iterate, reset trace and refractory trace (B, L, D) from ``spikes`` (B, L, D)."""
    reset = torch.zeros_like(excess[:, 0])
    refractory = torch.zeros_like(reset)
    updates, resets, refractories = [], [], []
    for excess_t, s_t in zip(excess.unbind(1), spikes.unbind(1)):
        updates.append((refractory_margin(excess_t, v_th, rho, beta * reset, refractory) >= 0).to(excess.dtype))
        resets.append(beta * reset)
        refractories.append(refractory)
        reset = beta * reset + s_t
        refractory = gamma * refractory + s_t
    return torch.stack(updates, 1), torch.stack(resets, 1), torch.stack(refractories, 1)
