"""PRF neuron (docs/neurons.md, section 2): FFT kernel form, complex recurrence (the definition) and the
two-real-state step form agree in spikes, potentials and gradients; with and without reset."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from lra_snn.neurons import build_neuron
from lra_snn.neurons.prf import PRF
from lra_snn.ops.prf_membrane.torch import causal_fft_conv, prf_kernel
from lra_snn.optim.groups import group_of

# (reset, input regime) -> (scale, bias, lowest and highest accepted firing rate)
REGIMES = {
    (False, "sparse"): (2.0, 0.0, 0.002, 0.03),
    (False, "dense"): (1.0, 1.0, 0.35, 0.65),
    (True, "sparse"): (3.0, 0.0, 0.002, 0.03),
    (True, "dense"): (2.0, 12.0, 0.2, 0.5),
}
SHAPES = [(1, 1, 1), (2, 7, 3), (3, 33, 5), (2, 1031, 4)]


def gaussian_input(shape, scale, bias, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=generator, dtype=torch.float64) * scale + bias).to(dtype)


def make_prf(d_model, reset=False, seed=0, **kwargs):
    """A PRF with fast dynamics (Delta in [0.03, 0.1]) unless overridden, float64."""
    torch.manual_seed(seed)
    options = dict(delta_min=0.03, delta_max=0.1, theta_max=1.0, reset=reset) | kwargs
    return PRF(d_model, **options).double()


@pytest.mark.parametrize("reset", [False, True])
@pytest.mark.parametrize("regime", ["sparse", "dense"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_three_forms_agree_in_float64(shape, regime, reset, run_steps):
    scale, bias, _, _ = REGIMES[reset, regime]
    neuron = make_prf(shape[-1], reset)
    x = gaussian_input(shape, scale, bias)
    parallel = neuron(x)
    sequential, margin = neuron.run_sequential(x)
    assert parallel.shape == shape and parallel.dtype == torch.float64
    assert torch.equal(parallel, sequential)
    assert torch.equal(run_steps(neuron, x), sequential)
    torch.testing.assert_close(neuron.margin(x), margin.detach(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("theta_max", [math.pi / 6, 8 * math.pi], ids=["listops", "image"])
def test_default_delta_range_and_fast_rotation_agree(theta_max, run_steps):
    torch.manual_seed(7)
    neuron = PRF(6, theta_max=theta_max).double()
    x = gaussian_input((2, 500, 6), 20.0, 0.0, seed=8)
    parallel = neuron(x)
    assert 0.01 < parallel.mean() < 0.9
    sequential, margin = neuron.run_sequential(x)
    assert torch.equal(parallel, sequential)
    assert torch.equal(run_steps(neuron, x), sequential)
    torch.testing.assert_close(neuron.margin(x), margin.detach(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("reset, regime", sorted(REGIMES))
def test_input_regimes_reach_their_firing_rates(reset, regime):
    scale, bias, low, high = REGIMES[reset, regime]
    neuron = make_prf(16, reset)
    spikes = neuron(gaussian_input((4, 512, 16), scale, bias, seed=1))
    assert low <= spikes.mean().item() <= high
    assert neuron.firing_rate.item() == pytest.approx(spikes.mean().item())


@pytest.mark.parametrize("reset", [False, True])
def test_float32_forms_agree_with_the_float64_definition(reset, run_steps, compare_spike_trains):
    """float32 spikes may differ from the exact (float64) definition only at a step whose exact
    margin is within 1e-5 of the threshold, relative to max(1, |reset-free potential|) (the size
    of what float32 rounds); each row is compared up to its first disagreement, margins up to
    there to the same tolerance."""
    scale, bias, _, _ = REGIMES[reset, "dense"]
    neuron32 = make_prf(8, reset).float()
    reference_neuron = copy.deepcopy(neuron32).double()
    x = gaussian_input((4, 1031, 8), scale, bias, dtype=torch.float32, seed=2)
    with torch.no_grad():
        reference, reference_margin = reference_neuron.run_sequential(x.double())
        kernel = prf_kernel(reference_neuron.log_delta, reference_neuron.theta, neuron32.tau, x.shape[1])
        near = 1e-5 * causal_fft_conv(x.double(), kernel).abs().clamp_min(1.0)
    forms = {
        "parallel": (neuron32(x), neuron32.margin(x)),
        "sequential": neuron32.run_sequential(x),
        "step": (run_steps(neuron32, x), None),
    }
    for name, (spikes, margin) in forms.items():
        assert spikes.dtype == torch.float32, name
        comparable, diverged = compare_spike_trains(spikes, reference, reference_margin, near)
        assert diverged <= 0.1, name
        if margin is not None:
            error = (margin.detach().double() - reference_margin).abs()
            assert (error <= near)[comparable].all(), name


def near_threshold_input(neuron, shape, seed=3):
    """Inputs putting ``Re z_t - b_t`` within 1e-9..1e-7 of ``V_th`` (either side) at about half
    the steps, from an independent loop of the definition (two real states); float64."""
    generator = torch.Generator().manual_seed(seed)
    planted = torch.rand(shape, generator=generator) < 0.5
    above = torch.rand(shape, generator=generator) < 0.5
    offset = torch.rand(shape, generator=generator, dtype=torch.float64) * 0.99e-7 + 1e-9
    offset = torch.where(above, offset, -offset)
    free = torch.randn(shape, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        delta = neuron.log_delta.double().exp()
        angle = delta * neuron.theta.double()
        p, q = torch.exp(-delta / neuron.tau) * torch.cos(angle), torch.exp(-delta / neuron.tau) * torch.sin(angle)
    real = imag = reset_offset = fired = torch.zeros(shape[0], shape[2], dtype=torch.float64)
    inputs = []
    for t in range(shape[1]):
        carried = p * real - q * imag
        if neuron.reset:
            reset_offset = p * (reset_offset + neuron.v_th * fired)
        x_t = torch.where(planted[:, t], (neuron.v_th + reset_offset - carried + offset[:, t]) / delta, free[:, t])
        real, imag = carried + delta * x_t, q * real + p * imag
        fired = (real - neuron.v_th - reset_offset >= 0).double()
        inputs.append(x_t)
    return torch.stack(inputs, 1), planted, above


@pytest.mark.parametrize("reset", [False, True])
def test_inputs_near_the_threshold_give_identical_spikes(reset, run_steps):
    neuron = make_prf(6, reset)
    x, planted, above = near_threshold_input(neuron, (3, 400, 6))
    sequential, margin = neuron.run_sequential(x)
    assert (margin.detach().abs()[planted] < 1.1e-7).all() and planted.float().mean() > 0.4
    assert torch.equal(sequential[planted], above[planted].double())
    assert torch.equal(neuron(x), sequential)
    assert torch.equal(run_steps(neuron, x), sequential)


@pytest.mark.parametrize("reset", [False, True])
def test_parallel_gradients_equal_the_complex_recurrence(reset):
    neuron = make_prf(3, reset)
    x = gaussian_input((2, 65, 3), 1.0, 1.0, seed=4).requires_grad_()
    weight = gaussian_input((2, 65, 3), 1.0, 0.0, seed=5)
    inputs = [x, neuron.log_delta, neuron.log_theta]
    parallel = torch.autograd.grad((neuron(x) * weight).sum(), inputs)
    sequential = torch.autograd.grad((neuron.forward_sequential(x) * weight).sum(), inputs)
    for name, p, s in zip(["x", "log_delta", "log_theta"], parallel, sequential):
        assert p.abs().max() > 1e-3, name
        torch.testing.assert_close(p, s, rtol=1e-8, atol=1e-11, msg=name)


def test_kernel_convolution_passes_gradcheck():
    generator = torch.Generator().manual_seed(9)
    x = torch.randn(2, 6, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    log_delta = torch.empty(3, dtype=torch.float64).uniform_(-3.0, -1.0, generator=generator).requires_grad_()
    theta = torch.rand(3, generator=generator, dtype=torch.float64).mul(3.0).requires_grad_()

    def convolve(x, log_delta, theta):
        return causal_fft_conv(x, prf_kernel(log_delta, theta, 2.0, x.shape[1]))

    assert torch.autograd.gradcheck(convolve, (x, log_delta, theta))


def test_kernel_is_the_real_part_of_the_complex_impulse_response():
    log_delta = torch.tensor([-4.0, -2.5, -1.0], dtype=torch.float64)
    theta = torch.tensor([0.3, 5.0, 20.0], dtype=torch.float64)
    delta = log_delta.exp()
    rotation = torch.exp(torch.complex(-delta / 2.0, delta * theta))
    steps = torch.arange(50, dtype=torch.float64)
    impulse = (delta.unsqueeze(1) * rotation.unsqueeze(1) ** steps).real
    torch.testing.assert_close(prf_kernel(log_delta, theta, 2.0, 50), impulse, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("length", [1, 7, 33])
def test_fft_convolution_is_causal_and_does_not_wrap(length):
    generator = torch.Generator().manual_seed(10)
    x = torch.randn(2, length, 3, generator=generator, dtype=torch.float64)
    kernel = torch.randn(3, length, generator=generator, dtype=torch.float64)
    direct = torch.stack([sum(kernel[:, t - j] * x[:, j] for j in range(t + 1)) for t in range(length)], 1)
    torch.testing.assert_close(causal_fft_conv(x, kernel), direct, rtol=1e-10, atol=1e-12)


def test_streams_30000_steps_with_bounded_state():
    torch.manual_seed(11)
    neuron = PRF(3).double()
    x = gaussian_input((2, 30000, 3), 10.0, 2.0, seed=6)
    delta = neuron.log_delta.detach().exp()
    bound = delta * x.abs().max() / (1 - torch.exp(-delta / neuron.tau))
    state = neuron.init_state(2, dtype=torch.float64)
    spikes, states = [], []
    with torch.no_grad():
        for x_t in x.unbind(1):
            s_t, state = neuron.step(x_t, state)
            spikes.append(s_t)
            states.append(state)
        parallel = neuron(x)
    magnitude = torch.hypot(torch.stack([s.real for s in states]), torch.stack([s.imag for s in states]))
    assert torch.isfinite(magnitude).all()
    assert (magnitude.amax((0, 1)) <= bound).all()
    streamed = torch.stack(spikes, 1)
    assert streamed.mean() > 0.001
    assert torch.equal(streamed, parallel)


def test_parameters_follow_the_init_ranges_and_the_dynamics_group():
    """The paper's Listing 2: log_dt uniform in [log 1e-3, log 1e-1]; log_theta = log(theta_max * u), u uniform,
    so theta = exp(log_theta) is uniform in (0, theta_max]."""
    torch.manual_seed(12)
    neuron = build_neuron("prf", 256, theta_max=8 * math.pi)
    assert isinstance(neuron, PRF)
    assert dict(neuron.named_parameters()).keys() == {"log_delta", "log_theta"}
    assert all(group_of(p) == "dynamics" for p in neuron.parameters())
    log_delta, log_theta = neuron.log_delta.detach(), neuron.log_theta.detach()
    assert math.log(1e-3) <= log_delta.min() and log_delta.max() <= math.log(1e-1)
    assert log_delta.max() - log_delta.min() > 0.8 * (math.log(1e-1) - math.log(1e-3))
    theta = neuron.theta.detach()
    torch.testing.assert_close(theta, log_theta.exp())
    assert torch.isfinite(log_theta).all() and log_theta.max() <= math.log(8 * math.pi) + 1e-6
    assert theta.min() > 0 and theta.max() > 6 * math.pi
    # uniform in theta (not in log theta): about half the channels below theta_max / 2
    assert 0.4 < (theta < 4 * math.pi).double().mean() < 0.6


def test_theta_stays_positive_under_any_update():
    neuron = PRF(3).double()
    with torch.no_grad():
        neuron.log_theta.copy_(torch.tensor([-40.0, 0.0, 5.0], dtype=torch.float64))
    assert (neuron.theta > 0).all()


def test_a_state_dict_of_the_earlier_theta_parameter_is_refused_clearly():
    neuron = PRF(4)
    old = {"log_delta": neuron.log_delta.detach().clone(), "theta": torch.rand(4)}
    with pytest.raises(RuntimeError, match="stores log_theta"):
        neuron.load_state_dict(old)
    neuron.load_state_dict(PRF(4).state_dict())  # the current layout loads


def test_low_precision_input_runs_in_float32():
    torch.manual_seed(13)
    neuron = PRF(4, delta_min=0.03, delta_max=0.1)
    x = gaussian_input((2, 40, 4), 1.0, 1.0, dtype=torch.bfloat16, seed=14)
    spikes = neuron(x)
    assert spikes.dtype == torch.bfloat16
    assert torch.equal(spikes.float(), neuron(x.float()))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(delta_min=0.2, delta_max=0.1), r"^PRF: delta_min=0.2 exceeds delta_max=0.1$"),
        (dict(tau=0.0), r"^PRF: tau=0.0: expected a number > 0$"),
        (dict(theta_max=0.0), r"^PRF: theta_max=0.0: expected a number > 0$"),
        (dict(surrogate="sigmoid"), r"^PRF: surrogate='sigmoid': expected one of "),
    ],
)
def test_rejects_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PRF(4, **kwargs)


def test_rejects_bad_input_shapes():
    neuron = PRF(4)
    with pytest.raises(ValueError, match="batch, length, channels"):
        neuron(torch.zeros(4, 10))
    with pytest.raises(ValueError, match="d_model=4"):
        neuron.forward_sequential(torch.zeros(2, 10, 5))
