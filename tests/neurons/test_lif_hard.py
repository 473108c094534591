"""Hard-reset LIF of SpikingSSMs (docs/neurons.md, section 8): the parallel form, the time loop (the
definition) and the step form give the same spikes, potentials and gradients, on every backend."""

from __future__ import annotations

import pytest
import torch

from lra_snn.neurons import build_neuron
from lra_snn.neurons.lif_hard import HardResetLIF
from lra_snn.ops.leaky_integrate.naive import leaky_integrate_naive

# input regime -> (scale, bias, lowest and highest accepted firing rate)
REGIMES = {"sparse": (0.45, 0.0, 0.005, 0.03), "dense": (1.0, 1.0, 0.4, 0.6)}
SHAPES = [(1, 1, 1), (2, 7, 3), (3, 33, 5), (2, 1031, 4)]
# the kernels run on CUDA, else under the Triton interpreter (tests/conftest.py switches it on)
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def gaussian_input(shape, scale, bias, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=generator, dtype=torch.float64) * scale + bias).to(dtype)


@pytest.mark.parametrize("regime", sorted(REGIMES))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_three_forms_agree_in_float64(shape, regime, run_steps):
    scale, bias, _, _ = REGIMES[regime]
    neuron = HardResetLIF(shape[-1])
    x = gaussian_input(shape, scale, bias)
    parallel = neuron(x)
    sequential, margin = neuron.run_sequential(x)
    assert parallel.shape == shape and parallel.dtype == torch.float64
    assert torch.equal(parallel, sequential)
    assert torch.equal(run_steps(neuron, x), sequential)
    torch.testing.assert_close(neuron.margin(x), margin.detach(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_input_regimes_reach_their_firing_rates(regime):
    scale, bias, low, high = REGIMES[regime]
    neuron = HardResetLIF(16)
    spikes = neuron(gaussian_input((4, 256, 16), scale, bias, seed=1))
    rate = spikes.mean().item()
    assert low <= rate <= high
    assert neuron.firing_rate.item() == pytest.approx(rate)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_float32_forms_agree_with_the_float64_definition(regime, run_steps, compare_spike_trains):
    """float32 spikes may differ from the exact (float64) definition only at a step whose exact
    margin is within 1e-5 of the threshold, relative to max(1, |reset-free potential|) (the size
    of what float32 rounds in the parallel form); each row is compared up to its first disagreement,
    margins up to there to the same tolerance."""
    scale, bias, _, _ = REGIMES[regime]
    neuron = HardResetLIF(8)
    x = gaussian_input((4, 1031, 8), scale, bias, dtype=torch.float32, seed=2)
    reference, reference_margin = neuron.run_sequential(x.double())
    near = 1e-5 * leaky_integrate_naive(x.double(), neuron.tau).abs().clamp_min(1.0)
    forms = {
        "parallel": (neuron(x), neuron.margin(x)),
        "sequential": neuron.run_sequential(x),
        "step": (run_steps(neuron, x), None),
    }
    for name, (spikes, margin) in forms.items():
        assert spikes.dtype == torch.float32, name
        comparable, diverged = compare_spike_trains(spikes, reference, reference_margin, near)
        assert diverged <= 0.1, name
        if margin is not None:
            error = (margin.detach().double() - reference_margin).abs()
            assert (error <= near)[comparable].all(), name


def near_threshold_input(shape, tau, v_th, seed=3):
    """Inputs putting ``u_t`` within 1e-10..1e-9 of ``V_th`` (either side) at about half the steps,
    built with an independent loop of the definition; returns x and the planted steps."""
    generator = torch.Generator().manual_seed(seed)
    planted = torch.rand(shape, generator=generator) < 0.5
    above = torch.rand(shape, generator=generator) < 0.5
    size = torch.rand(shape, generator=generator, dtype=torch.float64) * 0.9e-9 + 1e-10
    free = torch.randn(shape, generator=generator, dtype=torch.float64) + 0.5
    after_reset = torch.zeros(shape[0], shape[2], dtype=torch.float64)
    inputs = []
    for t in range(shape[1]):
        carried = tau * after_reset
        x_t = torch.where(
            planted[:, t], (v_th - carried) + torch.where(above[:, t], size[:, t], -size[:, t]), free[:, t]
        )
        potential = carried + x_t
        after_reset = torch.where(potential >= v_th, 0.0, potential)
        inputs.append(x_t)
    return torch.stack(inputs, 1), planted


def test_inputs_within_1e_9_of_the_threshold_give_identical_spikes(run_steps):
    neuron = HardResetLIF(6)
    x, planted = near_threshold_input((3, 400, 6), neuron.tau, neuron.v_th)
    sequential, margin = neuron.run_sequential(x)
    assert planted.float().mean() > 0.4 and (margin.abs()[planted] <= 1e-9).all()
    assert (margin[planted] >= 0).any() and (margin[planted] < 0).any()
    assert torch.equal(neuron(x), sequential)
    assert torch.equal(run_steps(neuron, x), sequential)


@pytest.mark.parametrize("backend", ["compiled", "torch"])  # the CPU default, and the PyTorch path
@pytest.mark.parametrize("surrogate", ["triangle", "atan", "rect"])
@pytest.mark.parametrize("shape", [(2, 65, 3), (1, 1, 2), (2, 7, 3)], ids=lambda s: "x".join(map(str, s)))
def test_parallel_gradient_equals_autograd_through_the_time_loop(shape, surrogate, backend):
    neuron = HardResetLIF(shape[-1], surrogate=surrogate, backend=backend)
    x = gaussian_input(shape, 1.0, 1.0, seed=4).requires_grad_()
    weight = gaussian_input(shape, 1.0, 0.0, seed=5)
    assert torch.equal(neuron(x), neuron.forward_sequential(x))
    (parallel,) = torch.autograd.grad((neuron(x) * weight).sum(), x)
    (sequential,) = torch.autograd.grad((neuron.forward_sequential(x) * weight).sum(), x)
    assert parallel.abs().max() > 0.1
    torch.testing.assert_close(parallel, sequential, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("surrogate", ["triangle", "atan"])
def test_the_triton_backend_equals_the_time_loop(surrogate):
    """Forward and gradient through the kernels (the interpreter on the CPU), small shapes, odd length."""
    neuron = HardResetLIF(19, surrogate=surrogate, backend="triton")
    x = gaussian_input((2, 23, 19), 1.0, 1.0, seed=6).to(DEVICE).requires_grad_()
    weight = gaussian_input((2, 23, 19), 1.0, 0.0, seed=7).to(DEVICE)
    parallel = neuron(x)
    (grad,) = torch.autograd.grad((parallel * weight).sum(), x)
    sequential = neuron.forward_sequential(x)
    (expected,) = torch.autograd.grad((sequential * weight).sum(), x)
    assert 0 < sequential.mean() < 1
    assert torch.equal(parallel, sequential)
    torch.testing.assert_close(grad, expected, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(neuron.margin(x), neuron.run_sequential(x)[1].detach(), rtol=0, atol=1e-9)


def test_no_gradient_flows_back_past_a_spike():
    """A spike at step 1 makes every later step independent of the inputs before it."""
    neuron = HardResetLIF(1, surrogate="rect")
    x = torch.tensor([[[0.5], [1.2], [0.6], [0.7]]], dtype=torch.float64, requires_grad=True)
    spikes = neuron(x)
    assert spikes.flatten().tolist() == [0.0, 1.0, 0.0, 0.0]
    (grad,) = torch.autograd.grad(spikes[0, 3, 0], x)
    assert grad.flatten().tolist() == [0.0, 0.0, neuron.tau, 1.0]


def test_streams_30000_steps_with_bounded_state():
    neuron = HardResetLIF(3)
    x = gaussian_input((2, 30000, 3), 1.0, 1.0, seed=8)
    state = neuron.init_state(2, dtype=torch.float64)
    spikes, potentials = [], []
    with torch.no_grad():
        for x_t in x.unbind(1):
            s_t, state = neuron.step(x_t, state)
            spikes.append(s_t)
            potentials.append(state.potential)
        parallel = neuron(x)
    bound = x.abs().max() / (1 - neuron.tau)
    assert torch.stack(potentials).abs().max() <= bound
    streamed = torch.stack(spikes, 1)
    assert streamed.mean() > 0.3
    assert torch.equal(streamed, parallel)


def test_registry_builds_the_papers_defaults():
    neuron = build_neuron("lif_hard", 4)
    assert isinstance(neuron, HardResetLIF)
    assert (neuron.tau, neuron.v_th, neuron.surrogate, neuron.backend) == (0.125, 1.0, "triangle", None)
    assert list(neuron.parameters()) == [] and neuron.macs_per_step() == 1
    assert build_neuron("lif_hard", 4, tau=1.0, v_th=0.5).tau == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(tau=0.0), "tau=0.0: expected a number in \\(0, 1\\]"),
        (dict(tau=1.5), "tau"),
        (dict(v_th=0.0), "v_th"),
        (dict(surrogate="sigmoid"), "surrogate"),
        (dict(backend="cuda"), "backend"),
    ],
)
def test_rejects_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HardResetLIF(4, **kwargs)


def test_rejects_bad_input_shapes():
    neuron = HardResetLIF(4)
    with pytest.raises(ValueError, match="batch, length, channels"):
        neuron(torch.zeros(4, 10))
    for form in (neuron, neuron.forward_sequential, neuron.margin):
        with pytest.raises(ValueError, match="d_model=4"):
            form(torch.zeros(2, 10, 5))


def test_the_state_starts_at_rest_per_sequence_and_channel():
    state = HardResetLIF(3).init_state(2, torch.device("cpu"), torch.float64)
    assert all(torch.equal(part, torch.zeros(2, 3, dtype=torch.float64)) for part in state)
    assert all(part.dtype == torch.float64 for part in state)
