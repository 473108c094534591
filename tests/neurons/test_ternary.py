"""Ternary spikes with a dynamic threshold, the GSU's spiking input (docs/neurons.md, section 7):
the rule by hand, three forms equal, no gradient, firing rate counting either sign."""

from __future__ import annotations

import pytest
import torch

from lra_snn.neurons.ternary import TernarySpike, ternarize


def test_rule_by_hand():
    # per step the threshold is 0.15 * max |y| over the channels: step 0: 0.15 * 4 = 0.6; step 1: 0.15 * 0.2 = 0.03
    y = torch.tensor([[[4.0, -0.6, 0.59, -0.7], [0.02, -0.2, 0.03, 0.0]]], dtype=torch.float64)
    expected = torch.tensor([[[1.0, -1.0, 0.0, -1.0], [0.0, -1.0, 1.0, 0.0]]], dtype=torch.float64)
    assert torch.equal(ternarize(y, 0.15), expected)
    neuron = TernarySpike(4)
    assert torch.equal(neuron(y), expected)
    assert neuron.firing_rate.item() == pytest.approx(5 / 8)  # |s| counted: five spikes of either sign


def test_three_forms_agree_on_odd_lengths(run_steps):
    generator = torch.Generator().manual_seed(3)
    neuron = TernarySpike(5, fraction=0.3)
    x = torch.randn(3, 17, 5, generator=generator, dtype=torch.float64)
    parallel = neuron(x)
    assert set(parallel.unique().tolist()) == {-1.0, 0.0, 1.0}
    assert torch.equal(neuron.forward_sequential(x), parallel)
    assert neuron.init_state(3) is None
    assert torch.equal(run_steps(neuron, x), parallel)
    assert neuron.macs_per_step() == 0


def test_carries_no_gradient():
    x = torch.randn(2, 4, 3, requires_grad=True)
    assert not TernarySpike(3)(x).requires_grad


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_rejects_fractions_outside_the_unit_interval(fraction):
    with pytest.raises(ValueError, match="fraction"):
        TernarySpike(3, fraction=fraction)
