"""Reference of one boundary-compression iteration of the refractory LIF (SPikE-SSM reconstruction,
arXiv 2410.17268; neurons.md section 3), as a time loop.

From a spike train ``s``: reset trace ``R_t = beta * sum_{i<t} beta^(t-1-i) s_i``, refractory
trace ``Q_t = sum_{i<t} gamma^(t-1-i) s_i`` and the next iterate ``H(excess_t - V_th R_t - rho Q_t)``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def refractory_iteration_sequential(excess: Tensor, spikes: Tensor, v_th: Tensor, rho: Tensor, beta: float,
                                    gamma: float) -> tuple[Tensor, Tensor, Tensor]:
    """Next iterate, reset trace and refractory trace (B, L, D) from ``spikes`` (B, L, D)."""
    reset = torch.zeros_like(excess[:, 0])
    refractory = torch.zeros_like(reset)
    updates, resets, refractories = [], [], []
    for excess_t, s_t in zip(excess.unbind(1), spikes.unbind(1)):
        updates.append((excess_t - v_th * beta * reset - rho * refractory >= 0).to(excess.dtype))
        resets.append(beta * reset)
        refractories.append(refractory)
        reset = beta * reset + s_t
        refractory = gamma * refractory + s_t
    return torch.stack(updates, 1), torch.stack(resets, 1), torch.stack(refractories, 1)
