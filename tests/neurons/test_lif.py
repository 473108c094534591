"""Decoupled-reset LIF (docs/neurons.md, section 1): the parallel form, the time loop (the definition)
and the step form give the same spikes, potentials and gradients."""

from __future__ import annotations

import pytest
import torch

from lra_snn.neurons import build_neuron
from lra_snn.neurons.lif import DecoupledResetLIF
from lra_snn.ops.linear_scan.naive import linear_scan_naive

# input regime -> (scale, bias, lowest and highest accepted firing rate)
REGIMES = {"sparse": (0.4, 0.0, 0.003, 0.03), "dense": (2.0, 1.0, 0.35, 0.70)}
SHAPES = [(1, 1, 1), (2, 7, 3), (3, 33, 5), (2, 1031, 4)]


def gaussian_input(shape, scale, bias, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=generator, dtype=torch.float64) * scale + bias).to(dtype)


@pytest.mark.parametrize("regime", sorted(REGIMES))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_three_forms_agree_in_float64(shape, regime, run_steps):
    scale, bias, _, _ = REGIMES[regime]
    neuron = DecoupledResetLIF(shape[-1])
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
    neuron = DecoupledResetLIF(16)
    spikes = neuron(gaussian_input((4, 256, 16), scale, bias, seed=1))
    rate = spikes.mean().item()
    assert low <= rate <= high
    assert neuron.firing_rate.item() == pytest.approx(rate)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_float32_forms_agree_with_the_float64_definition(regime, run_steps, compare_spike_trains):
    """float32 spikes may differ from the exact (float64) definition only at a step whose exact
    margin is within 1e-5 of the threshold, relative to max(1, |reset-free potential|) (the size
    of what float32 rounds); each row is compared up to its first disagreement, margins up to
    there to the same tolerance."""
    scale, bias, _, _ = REGIMES[regime]
    neuron = DecoupledResetLIF(8)
    x = gaussian_input((4, 1031, 8), scale, bias, dtype=torch.float32, seed=2)
    reference, reference_margin = neuron.run_sequential(x.double())
    reset_free = linear_scan_naive(torch.tensor(neuron.beta, dtype=torch.float64), x.double())
    near = 1e-5 * reset_free.abs().clamp_min(1.0)
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


def near_threshold_input(shape, beta, v_th, seed=3):
    """Inputs putting ``u_t`` within 1e-9..1e-7 of ``V_th`` (either side) at about half the steps.

    Built with an independent loop of the definition; returns x and the sign of each planted
    offset (True: at or above threshold), NaN-free, float64.
    """
    generator = torch.Generator().manual_seed(seed)
    planted = torch.rand(shape, generator=generator) < 0.5
    above = torch.rand(shape, generator=generator) < 0.5
    offset = torch.rand(shape, generator=generator, dtype=torch.float64) * 0.99e-7 + 1e-9
    offset = torch.where(above, offset, -offset)
    free = torch.randn(shape, generator=generator, dtype=torch.float64)
    potential = torch.zeros(shape[0], shape[2], dtype=torch.float64)
    fired = torch.zeros_like(potential)
    inputs = []
    for t in range(shape[1]):
        carried = beta * (potential - v_th * fired)
        x_t = torch.where(planted[:, t], v_th - carried + offset[:, t], free[:, t])
        potential = carried + x_t
        fired = (potential >= v_th).double()
        inputs.append(x_t)
    return torch.stack(inputs, 1), planted, above


def test_inputs_near_the_threshold_give_identical_spikes(run_steps):
    neuron = DecoupledResetLIF(6)
    x, planted, above = near_threshold_input((3, 400, 6), neuron.beta, neuron.v_th)
    sequential, margin = neuron.run_sequential(x)
    assert (margin.abs()[planted] < 1.1e-7).all() and planted.float().mean() > 0.4
    assert torch.equal(sequential[planted], above[planted].double())
    assert torch.equal(neuron(x), sequential)
    assert torch.equal(run_steps(neuron, x), sequential)


def test_float32_disagreements_occur_only_near_the_threshold(run_steps, compare_spike_trains):
    """On inputs planted 1e-9..1e-7 from the threshold, float32 rounding flips some spikes; the
    comparison rule must accept exactly those (and the test checks that some do flip)."""
    neuron = DecoupledResetLIF(6)
    x64, _, _ = near_threshold_input((3, 400, 6), neuron.beta, neuron.v_th)
    x = x64.float()
    reference, reference_margin = neuron.run_sequential(x.double())
    reset_free = linear_scan_naive(torch.tensor(neuron.beta, dtype=torch.float64), x.double())
    near = 1e-5 * reset_free.abs().clamp_min(1.0)
    diverged = [
        compare_spike_trains(spikes, reference, reference_margin, near)[1]
        for spikes in (neuron(x), neuron.forward_sequential(x), run_steps(neuron, x))
    ]
    assert max(diverged) > 0


@pytest.mark.parametrize("backend", ["compiled", "torch"])  # the CPU default, and the PyTorch path
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("surrogate", ["atan", "triangle", "rect"])
def test_parallel_gradient_equals_the_time_loop(surrogate, detach_reset, backend):
    neuron = DecoupledResetLIF(3, surrogate=surrogate, detach_reset=detach_reset, backend=backend)
    x = gaussian_input((2, 65, 3), 1.0, 0.5, seed=4).requires_grad_()
    weight = gaussian_input((2, 65, 3), 1.0, 0.0, seed=5)
    assert torch.equal(neuron(x), neuron.forward_sequential(x))
    (parallel,) = torch.autograd.grad((neuron(x) * weight).sum(), x)
    (sequential,) = torch.autograd.grad((neuron.forward_sequential(x) * weight).sum(), x)
    assert parallel.abs().max() > 0.1
    torch.testing.assert_close(parallel, sequential, rtol=1e-9, atol=1e-12)


def test_gradient_through_the_reset_differs_from_the_detached_one():
    x = gaussian_input((2, 65, 3), 1.0, 0.5, seed=4).requires_grad_()
    grads = [torch.autograd.grad(DecoupledResetLIF(3, detach_reset=detach)(x).sum(), x)[0] for detach in (True, False)]
    assert (grads[0] - grads[1]).abs().max() > 1e-3


def test_streams_30000_steps_with_bounded_state():
    neuron = DecoupledResetLIF(3)
    x = gaussian_input((2, 30000, 3), 2.0, 1.0, seed=6)
    bound = (x.abs().max() + neuron.beta * neuron.v_th) / (1 - neuron.beta)
    state = neuron.init_state(2, dtype=torch.float64)
    spikes, potentials = [], []
    with torch.no_grad():
        for x_t in x.unbind(1):
            s_t, state = neuron.step(x_t, state)
            spikes.append(s_t)
            potentials.append(state.potential)
        parallel = neuron(x)
    potentials = torch.stack(potentials)
    assert torch.isfinite(potentials).all()
    assert potentials.abs().max() <= bound
    streamed = torch.stack(spikes, 1)
    assert streamed.mean() > 0.1
    assert torch.equal(streamed, parallel)


def test_registry_builds_a_parameter_free_lif():
    neuron = build_neuron("lif", 4, tau=4.0, v_th=0.5)
    assert isinstance(neuron, DecoupledResetLIF)
    assert neuron.beta == 0.75 and neuron.v_th == 0.5
    assert list(neuron.parameters()) == []


@pytest.mark.parametrize(
    "kwargs, message", [(dict(tau=0.5), "tau"), (dict(v_th=0.0), "v_th"), (dict(surrogate="sigmoid"), "surrogate")]
)
def test_rejects_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DecoupledResetLIF(4, **kwargs)


def test_rejects_bad_input_shapes():
    neuron = DecoupledResetLIF(4)
    with pytest.raises(ValueError, match="batch, length, channels"):
        neuron(torch.zeros(4, 10))
    with pytest.raises(ValueError, match="d_model=4"):
        neuron(torch.zeros(2, 10, 5))
    with pytest.raises(ValueError, match="d_model=4"):
        neuron.forward_sequential(torch.zeros(2, 10, 5))
