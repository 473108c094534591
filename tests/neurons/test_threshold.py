"""The memoryless threshold neuron of the SD-TCM block (docs/neurons.md, section 2): three forms, no state."""

from __future__ import annotations

import pytest
import torch

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
    with pytest.raises(ValueError, match="unknown surrogate"):
        ThresholdSpike(D, surrogate="sigmoid")
