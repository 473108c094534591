"""SDN neuron (docs/neurons.md, section 9): the three forms agree, the gradient reaches x only through
``+ x_t``, the frozen predictor is causal and equals the network it was trained as, the shipped weights
approximate the exact hard-reset LIF, and a missing or mismatched weight file is refused."""

from __future__ import annotations

import json

import pytest
import torch

from lra_snn.cli.train_sdn import lif_membrane
from lra_snn.neurons import build_neuron, sdn
from lra_snn.neurons.sdn import (
    DEFAULT_WEIGHTS,
    KERNEL,
    WEIGHTS_DIR,
    MembranePredictor,
    SurrogateDynamicNetwork,
    SurrogateDynamicNeuron,
)
from lra_snn.ops.surrogate import spike, surrogate_derivative

F64_ATOL = 1e-9
# The shipped predictor against the exact LIF on fresh N(0, 1) currents (results/sdn/report.md, row N(0, 1):
# spike agreement 0.99972, mean absolute error of m 1.2e-3 on 5,000 x 1,024 steps). The bounds leave room for
# the sampling spread of 32 x 1,024 steps and sit above what a neuron without memory (m = 0) reaches, 0.983.
MIN_SPIKE_AGREEMENT = 0.998
MAX_MEM_MAE = 2.5e-3


def make(channels: int, dtype=torch.float64, **options) -> SurrogateDynamicNeuron:
    neuron = build_neuron("sdn", channels, **options)
    assert isinstance(neuron, SurrogateDynamicNeuron)
    return neuron.to(dtype)


def currents(shape, mean: float, std: float, seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * std + mean


def membrane_steps(neuron: SurrogateDynamicNeuron, x: torch.Tensor) -> torch.Tensor:
    """``m`` (B, L, D) from the step form, one step at a time."""
    window = neuron.init_state(x.shape[0], x.device, x.dtype)
    steps = []
    for x_t in x.unbind(1):
        m_t, window = neuron.membrane_step(x_t, window)
        steps.append(m_t)
    return torch.stack(steps, 1)


@pytest.mark.parametrize("length,batch,channels", [(1, 2, 3), (7, 1, 1), (33, 4, 5), (1001, 2, 3)])
@pytest.mark.parametrize("mean,std", [(0.0, 0.5), (0.0, 1.0), (0.6, 1.5)])
def test_parallel_sequential_step_agree(length, batch, channels, mean, std, run_steps):
    neuron = make(channels)
    x = currents((batch, length, channels), mean, std, seed=length + channels)
    m = neuron.membrane(x)
    torch.testing.assert_close(membrane_steps(neuron, x), m, rtol=0, atol=F64_ATOL)
    spikes = neuron(x)
    assert spikes.dtype == torch.float64 and torch.equal(spikes, (m + x - 1.0 >= 0).to(spikes.dtype))
    assert torch.equal(neuron.forward_sequential(x), spikes)
    assert torch.equal(run_steps(neuron, x), spikes)


def test_firing_rates_span_sparse_to_dense():
    neuron = make(8)
    rates = [float(neuron(currents((4, 257, 8), mean, std, seed=1)).mean()) for mean, std in ((0, 0.45), (0.8, 1.5))]
    assert rates[0] < 0.03 and rates[1] > 0.4, rates


def test_the_gradient_reaches_x_only_through_the_plus_x_term():
    """On a tiny case the Jacobian of the spikes is diagonal, ``ds_t/dx_t`` the triangle surrogate at
    ``m_t + x_t - V_th``, in both forms; letting it flow through the predictor as well would fill the lower
    triangle (m_t depends on x_1 .. x_{t-1})."""
    neuron = make(2)
    x = currents((1, 6, 2), 0.7, 0.4, seed=3)
    margin = neuron.membrane(x) + x - 1.0
    expected = torch.diag_embed(surrogate_derivative(margin, "triangle").flatten())
    assert expected.diagonal().abs().min() > 0  # every step inside the triangle: a real check
    for form in (neuron.forward, neuron.forward_sequential):
        jacobian = torch.autograd.functional.jacobian(form, x).reshape(12, 12)
        torch.testing.assert_close(jacobian, expected, rtol=0, atol=1e-12)

    def through_the_predictor(x):  # the same spikes with the predictor left in the graph
        m = neuron.predictor(x.transpose(1, 2).reshape(2, 6)).reshape(1, 2, 6).transpose(1, 2)
        return spike(m + x - 1.0, "triangle")

    leaky = torch.autograd.functional.jacobian(through_the_predictor, x).reshape(12, 12)
    assert leaky.tril(-1).abs().sum() > 0


def test_the_predictor_is_causal_and_sees_the_last_8_steps():
    """Perturbing x at step t0 changes m at steps t0+1 .. t0+8 only (strictly after t0, 8 taps)."""
    predictor = make(1).predictor
    x = currents((3, 40), 0.0, 1.0, seed=5)
    t0 = 20
    moved = x.clone()
    moved[:, t0] += 3.0
    changed = (predictor(moved) - predictor(x)).abs().amax(0) > 0
    assert changed.nonzero().flatten().tolist() == list(range(t0 + 1, t0 + 1 + KERNEL))


def test_the_folded_predictor_equals_the_network_in_evaluation_mode():
    """BatchNorm folded into the convs (evaluation mode, running statistics) computes the trained network."""
    torch.manual_seed(0)
    network = SurrogateDynamicNetwork()
    with torch.no_grad():
        for norm in (network.depthwise_norm, network.mix_norm):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.2, 2.0)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    network.eval()
    predictor = MembranePredictor(network.eval_weights(), network.depthwise_norm.eps)
    x = currents((4, 50), 0.3, 1.0, seed=6, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(predictor(x), network(x), rtol=1e-5, atol=1e-5)


def test_the_shipped_predictor_approximates_the_exact_lif():
    """Fresh N(0, 1) currents (a seed the training never drew), 32 channels x 1,024 steps: the predicted
    potential before each input is close to the exact hard-reset LIF's, and so are the spikes."""
    neuron = make(32, torch.float32)
    assert (neuron.tau, neuron.v_th) == (0.125, 1.0)
    x = currents((1, 1024, 32), 0.0, 1.0, seed=2024, dtype=torch.float32)
    mem, spikes = lif_membrane(x[0].T, neuron.tau, neuron.v_th)
    with torch.no_grad():
        predicted = neuron.membrane(x)[0].T
        fired = neuron(x)[0].T
    assert (predicted - mem).abs().mean() < MAX_MEM_MAE
    assert (fired == spikes).float().mean() >= MIN_SPIKE_AGREEMENT


def test_the_weights_are_buffers_carried_by_the_state_dict():
    neuron = make(4, torch.float32)
    assert list(neuron.parameters()) == []
    buffers = dict(neuron.named_buffers())
    assert set(buffers) == {f"predictor.{name}" for name in ("encoder", "depthwise_weight", "depthwise_bias",
                                                            "mix_weight", "mix_bias", "decoder_weight",
                                                            "decoder_bias")}  # fmt: skip
    state = neuron.state_dict()
    assert set(state) == set(buffers)
    other = make(4, torch.float32)
    with torch.no_grad():
        for value in other.buffers():
            value.zero_()
    other.load_state_dict(state)
    assert all(torch.equal(other.state_dict()[name], value) for name, value in state.items())


def test_macs_per_step_count_the_folded_predictor():
    assert make(3).macs_per_step() == 8 + 8 * 8 + 8 * 8 + 8


def test_a_missing_weight_file_is_refused_naming_it_and_the_command(tmp_path, monkeypatch):
    """An untrained predictor never runs: the shipped file missing (an empty weight folder here), or another."""
    monkeypatch.setattr(sdn, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError) as shipped:
        make(2)
    assert str(shipped.value) == (
        f"SDN weight file {tmp_path / DEFAULT_WEIGHTS} not found: the membrane predictor has not been trained; "
        "`make train-sdn` trains it"
    )
    path = tmp_path / "elsewhere" / "tau0.5.json"
    with pytest.raises(FileNotFoundError) as elsewhere:
        make(2, weights=str(path))
    assert str(path) in str(elsewhere.value) and f'`make train-sdn ARGS="--out {path}"`' in str(elsewhere.value)


def test_a_weight_file_of_another_architecture_is_refused(tmp_path):
    stored = json.loads((WEIGHTS_DIR / DEFAULT_WEIGHTS).read_text())
    stored["architecture"]["kernel"] = 4
    path = tmp_path / "kernel4.json"
    path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="kernel"):
        make(2, weights=str(path))


def test_a_weight_file_without_its_architecture_is_refused(tmp_path):
    stored = json.loads((WEIGHTS_DIR / DEFAULT_WEIGHTS).read_text())
    del stored["architecture"]
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=r"holds \{'format': 1, 'width': None, 'kernel': None\}"):
        make(2, weights=str(path))


def test_a_relative_path_is_read_from_the_working_folder(tmp_path, monkeypatch):
    """Only a bare file name means a shipped file; ``mine/tau.json`` is relative to where the run starts."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "tau.json").write_text((WEIGHTS_DIR / DEFAULT_WEIGHTS).read_text())
    monkeypatch.chdir(tmp_path)
    x = currents((1, 20, 2), 0.5, 1.0, seed=4)
    assert torch.equal(make(2, weights="mine/tau.json")(x), make(2)(x))


@pytest.mark.parametrize(
    "options,message",
    [
        ({"weights": ".json"}, r"weights='.json': expected the name of a weight file"),
        ({"v_th": 0.5}, r"v_th=0.5 but .*tau0.125.json predicts the LIF with v_th=1.0"),
        ({"surrogate": "sigmoid"}, r"surrogate='sigmoid': expected one of"),
        ({"weights": "tau0.125"}, r"weights='tau0.125': expected the name of a weight file"),
        ({"v_th": -1.0}, r"v_th=-1.0: expected a number > 0"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        make(2, **options)


def test_the_exact_spikes_are_the_hard_reset_lif_s_and_use_exact_fires_them():
    torch.manual_seed(5)
    neuron, exact = build_neuron("sdn", 3).double(), build_neuron("lif_hard", 3, tau=0.125, v_th=1.0).double()
    x = torch.randn(2, 41, 3, dtype=torch.float64, requires_grad=True)
    expected = exact(x)
    assert torch.equal(neuron.exact_spikes(x), expected)
    own_gradient = torch.autograd.grad(neuron(x).sum(), x)[0]  # the surrogate through + x only
    neuron.use_exact = True
    swapped = neuron(x)
    assert torch.equal(swapped, expected) and neuron.firing_rate.item() == pytest.approx(expected.mean().item())
    swapped.sum().backward()  # the exact neuron's gradient, cut at spikes
    reference = x.detach().clone().requires_grad_(True)
    exact(reference).sum().backward()
    torch.testing.assert_close(x.grad, reference.grad, rtol=0, atol=0)
    assert not torch.allclose(own_gradient, reference.grad)
