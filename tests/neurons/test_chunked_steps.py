"""The step form over chunks (``Neuron.steps``): a stream read chunk by chunk of odd sizes gives the spikes
of the parallel form over the whole stream, bit for bit in float64, and the state after each chunk equals
the state after the same steps one at a time."""

from __future__ import annotations

import pytest
import torch

from lra_snn.neurons import NEURONS, build_neuron, neuron_class

STREAMING = [name for name in NEURONS if not neuron_class(name).fixed_length]
CHUNKS = (5, 1, 11, 3)  # 20 steps in chunks of odd sizes
CHANNELS = 6
INPUT = {"prf": (40.0, 20.0)}  # (scale, bias) of the input; the PRF membrane integrates Delta x, Delta ~ 0.1


def tensors_of(state) -> list[torch.Tensor]:
    """The tensors of a neuron state (a tensor, a tuple of tensors, or None)."""
    if state is None:
        return []
    if isinstance(state, torch.Tensor):
        return [state]
    return [t for t in state if isinstance(t, torch.Tensor)]


@pytest.mark.parametrize("name", STREAMING)
def test_a_stream_in_chunks_gives_the_parallel_spikes_and_the_stepped_state(name):
    torch.manual_seed(0)
    options = {"k": 3} if "k" in neuron_class(name).option_rules else {}
    neuron = build_neuron(name, CHANNELS, **options).double().eval()
    scale, bias = INPUT.get(name, (1.5, 0.3))
    x = scale * torch.randn(3, sum(CHUNKS), CHANNELS, dtype=torch.float64) + bias
    with torch.no_grad():
        expected = neuron(x)
        state = neuron.init_state(3, dtype=torch.float64)
        stepped = neuron.init_state(3, dtype=torch.float64)
        start = 0
        for size in CHUNKS:
            chunk = x[:, start : start + size]
            spikes, state = neuron.steps(chunk, state)
            for t in range(size):
                _, stepped = neuron.step(chunk[:, t], stepped)
            assert torch.equal(spikes, expected[:, start : start + size]), (name, start)
            for got, want in zip(tensors_of(state), tensors_of(stepped), strict=True):
                assert torch.equal(got, want), (name, start)
            start += size
    assert expected.abs().sum() > 0  # some spikes: the comparison is not of zeros
