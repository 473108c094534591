"""The step form over chunks (``Neuron.steps``): a stream read chunk by chunk of odd sizes gives the spikes
of the parallel form over the whole stream, bit for bit in float64, and the state after each chunk equals
the state after the same steps one at a time."""

from __future__ import annotations

import pytest
import torch

from lra_snn.neurons import NEURONS, build_neuron, neuron_class
from lra_snn.ops.hard_reset_scan import compiled as hard_reset_compiled
from lra_snn.ops.lif import compiled as lif_compiled
from lra_snn.ops.prf_spikes import compiled as prf_compiled

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


COMPILED_CHUNKS = {  # neuron -> (module, its compiled chunk loop): one call per chunk on the CPU
    "lif": (lif_compiled, "lif_steps_compiled"),
    "lif_hard": (hard_reset_compiled, "hard_reset_steps_compiled"),
    "prf": (prf_compiled, "prf_steps_compiled"),
}


def counted(monkeypatch, name: str) -> list[int]:
    """Patch the compiled chunk loop of neuron ``name`` to count its calls (chunk lengths)."""
    module, function = COMPILED_CHUNKS[name]
    calls, original = [], getattr(module, function)

    def counting(x, *args):
        calls.append(x.shape[1])
        return original(x, *args)

    monkeypatch.setattr(module, function, counting)
    return calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(COMPILED_CHUNKS))
def test_a_chunk_runs_in_one_compiled_call_with_the_steps_spikes_and_state(name, dtype, monkeypatch):
    """Inputs around the threshold, float32 and float64, channels not a multiple of 8, a state from the
    stream before: the compiled chunk gives ``step``'s spikes and state bit for bit, in one call."""
    calls = counted(monkeypatch, name)
    torch.manual_seed(1)
    neuron = build_neuron(name, 13).to(dtype).eval()
    scale, bias = INPUT.get(name, (0.6, 0.6))
    x = (scale * torch.randn(4, 37, 13, dtype=torch.float64) + bias).to(dtype)
    with torch.no_grad():
        state, stepped = neuron.init_state(4, dtype=dtype), neuron.init_state(4, dtype=dtype)
        expected = []
        for size, start in ((9, 0), (28, 9)):
            spikes, state = neuron.steps(x[:, start : start + size], state)
            for t in range(start, start + size):
                s_t, stepped = neuron.step(x[:, t], stepped)
                expected.append(s_t)
            assert torch.equal(spikes, torch.stack(expected[start:], 1))
            for got, want in zip(tensors_of(state), tensors_of(stepped), strict=True):
                assert torch.equal(got, want) and got.dtype == dtype
    assert calls == [9, 28]
    assert 0.05 < torch.stack(expected).mean() < 0.95  # spikes and silences both


@pytest.mark.parametrize("name", sorted(COMPILED_CHUNKS))
def test_a_chunk_that_needs_gradients_or_another_backend_steps_one_step_at_a_time(name, monkeypatch):
    calls = counted(monkeypatch, name)
    neuron = build_neuron(name, 5)
    scale, bias = INPUT.get(name, (0.6, 0.6))
    x = (scale * torch.randn(2, 6, 5) + bias).requires_grad_()
    spikes, _ = neuron.steps(x, neuron.init_state(2))
    spikes.sum().backward()  # the surrogate gradient reaches the inputs through the steps
    assert x.grad is not None and x.grad.abs().sum() > 0
    neuron.backend = "torch"
    with torch.no_grad():
        neuron.steps(x, neuron.init_state(2))
    assert calls == []


def test_the_compiled_chunk_runs_with_autograd_on_when_nothing_needs_a_gradient_and_when_forced(monkeypatch):
    from lra_snn.ops.dispatch import CompiledUnavailable

    calls = counted(monkeypatch, "lif")
    neuron = build_neuron("lif", 5)
    x = 0.6 * torch.randn(2, 6, 5) + 0.6
    neuron.steps(x, neuron.init_state(2))  # autograd on, but no tensor asks for a gradient
    neuron.backend = "compiled"
    neuron.steps(x, neuron.init_state(2))
    assert calls == [6, 6]
    with pytest.raises(CompiledUnavailable, match="backend='compiled' was forced"):  # not a silent fallback
        neuron.steps(x.half(), neuron.init_state(2, dtype=torch.float16))
