"""Fixtures shared by the neuron tests: step-by-step runs and the rule for comparing spike trains.

Comparison rule across precisions (docs/neurons.md): spikes may differ only where the reference
potential is within ``near`` of the threshold. Once a spike differs, the rest of that neuron's
trajectory legitimately diverges (the reset differs), so each (batch, channel) row is compared
up to and including its first disagreement only, which must be a near-threshold step.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor


def _run_steps(neuron, x: Tensor) -> Tensor:
    """Spikes (B, L, D) from ``neuron.step`` applied to one time step at a time, no autograd."""
    with torch.no_grad():
        state = neuron.init_state(x.shape[0], x.device, x.dtype)
        spikes = []
        for x_t in x.unbind(1):
            s_t, state = neuron.step(x_t, state)
            spikes.append(s_t)
    return torch.stack(spikes, 1)


def _compare_spike_trains(
    spikes: Tensor, reference: Tensor, reference_margin: Tensor, near: float | Tensor
) -> tuple[Tensor, float]:
    """Apply the comparison rule; return the mask of steps before each row's first disagreement
    (where potentials are still comparable) and the fraction of rows that disagree somewhere.

    ``reference_margin`` is the reference's ``potential - threshold`` (B, L, D); ``near`` a
    float or a tensor broadcastable to it.
    """
    assert spikes.shape == reference.shape == reference_margin.shape
    length = spikes.shape[1]
    differ = spikes.to(reference.dtype) != reference
    row_differs = differ.any(1)
    first = torch.where(
        row_differs, differ.to(torch.int8).argmax(1), torch.full_like(row_differs, length, dtype=torch.long)
    )
    batch_idx, chan_idx = row_differs.nonzero(as_tuple=True)
    time_idx = first[batch_idx, chan_idx]
    near = torch.as_tensor(near, dtype=reference_margin.dtype).expand_as(reference_margin)
    margin_there = reference_margin[batch_idx, time_idx, chan_idx].abs()
    allowed = near[batch_idx, time_idx, chan_idx]
    far = margin_there >= allowed
    if far.any():
        k = int(far.nonzero()[0, 0])
        raise AssertionError(
            f"spikes differ at batch {int(batch_idx[k])}, step {int(time_idx[k])}, channel {int(chan_idx[k])} "
            f"where the reference margin {margin_there[k].item():.3e} is not within {allowed[k].item():.1e} "
            f"of the threshold ({int(far.sum())} such rows)"
        )
    steps = torch.arange(length).view(1, length, 1)
    before_first = steps < first.unsqueeze(1)
    return before_first, row_differs.float().mean().item()


@pytest.fixture
def run_steps() -> Callable[..., Tensor]:
    """``run_steps(neuron, x)``: spikes from the step form, one time step at a time."""
    return _run_steps


@pytest.fixture
def compare_spike_trains() -> Callable[..., tuple[Tensor, float]]:
    """``compare_spike_trains(spikes, reference, reference_margin, near)``: see the module docstring."""
    return _compare_spike_trains
