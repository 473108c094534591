"""The memoryless threshold neuron (docs/neurons.md, sections 2 and 7): three forms, no state."""

from __future__ import annotations

import pytest
import torch

from lra_snn.neurons import build_neuron
from lra_snn.neurons.threshold import ThresholdSpike

D = 6


def test_threshold_spike_forms_agree_and_are_memoryless(run_steps):
    torch.manual_seed(4)
    neuron = ThresholdSpike(D, v_th=0.5)
    x = torch.randn(2, 9, D)
    parallel = neuron(x)
    assert torch.equal(parallel, (x >= 0.5).float())
    assert torch.equal(neuron.forward_sequential(x), parallel)
    assert neuron.init_state(2) is None
    assert torch.equal(run_steps(neuron, x), parallel)
    assert neuron.macs_per_step() == 0


def test_unknown_surrogate_is_refused():
    with pytest.raises(ValueError, match=r"^ThresholdSpike: surrogate='sigmoid': expected one of 'atan'"):
        ThresholdSpike(D, surrogate="sigmoid")


def test_binary_s4d_heaviside_is_the_registered_threshold_neuron_at_zero(run_steps):
    """Binary S4D (docs/neurons.md, section 7): ``y_t = H(C u_t + D x_t)``, a spike at threshold 0,
    with the ATan surrogate's gradient (alpha = 2: 1 at the threshold)."""
    neuron = build_neuron("heaviside", D, v_th=0.0)
    assert isinstance(neuron, ThresholdSpike)
    x = torch.tensor([[[-1.0, -1e-12, 0.0, 1e-12, 2.0, -3.0]]], requires_grad=True)
    spikes = neuron(x)
    assert spikes.tolist() == [[[0.0, 0.0, 1.0, 1.0, 1.0, 0.0]]]
    assert torch.equal(run_steps(neuron, x.detach()), spikes.detach())
    spikes.sum().backward()
    expected = 1.0 / (1.0 + (torch.pi * x.detach()) ** 2)
    torch.testing.assert_close(x.grad, expected)
