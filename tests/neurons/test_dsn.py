"""DSN (dynamic-decay spiking neuron): parallel == sequential == step, integer and binary
spikes, surrogate gradients, gradcheck of the potential, stability at L = 32k, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from lra_snn.neurons import build_neuron
from lra_snn.neurons.dsn import DSN
from lra_snn.ops.surrogate import IntegerSpike
from lra_snn.optim.groups import group_of

F64_ATOL = 1e-9
F32_TOL = 1e-5
# (length, batch, channels): odd lengths on several shapes, the long one on one shape (speed)
CASES = [(length, b, c) for length in (1, 7, 33) for b, c in [(1, 1), (2, 3), (4, 16)]] + [(1001, 2, 3)]


def make(channels: int, dtype=torch.float64, seed: int = 0, **kwargs) -> DSN:
    torch.manual_seed(seed)
    return build_neuron("dsn", channels, **kwargs).to(dtype)


def stream(neuron: DSN, x: torch.Tensor):
    """Potentials and spikes from the step form, one step at a time (the state carries h_t)."""
    state = neuron.init_state(x.shape[0], x.device, x.dtype)
    potentials, spikes = [], []
    for t in range(x.shape[1]):
        s_t, state = neuron.step(x[:, t], state)
        potentials.append(state.h)
        spikes.append(s_t)
    return torch.stack(potentials, 1), torch.stack(spikes, 1)


def boundary_distance(h: torch.Tensor, neuron: DSN) -> torch.Tensor:
    """Distance of ``h`` to the nearest level boundary 0.5, 1.5, ..., N - 0.5."""
    boundaries = torch.arange(neuron.n_levels, dtype=h.dtype) + 0.5
    return (h.unsqueeze(-1) - boundaries).abs().amin(-1)


def assert_spikes_agree(spikes, reference, potential, neuron, dtype) -> None:
    """Identical in float64; in float32 they may differ only within 1e-5 of a boundary."""
    differ = spikes != reference
    if dtype == torch.float64:
        assert not differ.any(), f"{int(differ.sum())} spikes differ"
    else:
        assert (boundary_distance(potential[differ], neuron) < F32_TOL).all(), "float32 spikes differ off a boundary"


def assert_forms_agree(neuron: DSN, x: torch.Tensor) -> torch.Tensor:
    """parallel == sequential == step; returns the parallel spikes."""
    tol = dict(rtol=0, atol=F64_ATOL) if x.dtype == torch.float64 else dict(rtol=F32_TOL, atol=F32_TOL)
    h_par = neuron.potential(x)
    torch.testing.assert_close(neuron.potential_sequential(x), h_par, **tol)
    h_step, s_step = stream(neuron, x)
    torch.testing.assert_close(h_step, h_par, **tol)
    s_par = neuron(x)
    assert s_par.shape == x.shape
    assert set(s_par.unique().tolist()) <= set(float(v) for v in range(neuron.n_levels + 1))
    assert_spikes_agree(neuron.forward_sequential(x), s_par, h_par, neuron, x.dtype)
    assert_spikes_agree(s_step, s_par, h_par, neuron, x.dtype)
    return s_par


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("length,batch,channels", CASES)
@pytest.mark.parametrize("mode", [{}, {"binary": True}, {"kernel_size": 1, "n_levels": 2}])
def test_parallel_sequential_step_agree(mode, length, batch, channels, dtype):
    neuron = make(channels, dtype, seed=length + channels, **mode)
    gen = torch.Generator().manual_seed(3 * length + batch)
    x = (1.5 + 2.0 * torch.randn(batch, length, channels, generator=gen, dtype=torch.float64)).to(dtype)
    assert_forms_agree(neuron, x)


@pytest.mark.parametrize("binary", [False, True])
def test_firing_rates_span_sparse_to_dense(binary):
    """Scaling the input moves the rate from ~1 % to ~50 %; integer spikes count their value."""
    rates = []
    for scale in (0.25, 1.0, 4.0):
        neuron = make(8, binary=binary)
        gen = torch.Generator().manual_seed(int(10 * scale))
        x = scale * torch.randn(4, 65, 8, generator=gen, dtype=torch.float64)
        spikes = assert_forms_agree(neuron, x)
        neuron(x)
        assert neuron.firing_rate.item() == pytest.approx(spikes.mean().item())
        rates.append(float(neuron.firing_rate))
    if not binary:
        assert spikes.max() > 1  # multi-level spikes occurred, and the rate counted them
    assert 0.003 <= min(rates) <= 0.03 and max(rates) >= 0.4, rates


def _memoryless(neuron: DSN) -> DSN:
    """Decay ~ exp(-200) so that h_t = x_t exactly in float64: spikes are set by the input alone."""
    with torch.no_grad():
        neuron.decay_weight.zero_()
        neuron.decay_bias.fill_(-50.0)
    return neuron


def test_integer_spikes_on_and_near_boundaries():
    neuron = _memoryless(make(1, n_levels=4))
    values = [0.5, 0.5 - 1e-12, 0.5 + 1e-12, 1.5, 1.5 - 1e-9, 3.5, 4.5, 9.0, -0.3, 0.0, 2.49999999, 1.0]
    expected = [1.0, 0.0, 1.0, 2.0, 1.0, 4.0, 4.0, 4.0, 0.0, 0.0, 2.0, 1.0]
    x = torch.tensor(values, dtype=torch.float64).view(1, -1, 1)
    torch.testing.assert_close(neuron.potential(x), x, rtol=0, atol=1e-80)  # h_t = x_t + O(exp(-200))
    for spikes in (neuron(x), neuron.forward_sequential(x), stream(neuron, x)[1]):
        assert spikes.flatten().tolist() == expected


def test_binary_spikes_on_and_near_threshold():
    neuron = _memoryless(make(1, binary=True))
    values = [0.5, 0.5 - 1e-12, 0.5 + 1e-12, 3.0, -1.0]
    x = torch.tensor(values, dtype=torch.float64).view(1, -1, 1)
    for spikes in (neuron(x), neuron.forward_sequential(x), stream(neuron, x)[1]):
        assert spikes.flatten().tolist() == [1.0, 0.0, 1.0, 1.0, 0.0]


def test_integer_spike_straight_through_gradient():
    h = torch.tensor([-0.5, -1e-9, 0.0, 0.3, 2.0, 3.9, 4.0, 4.2, 7.0], dtype=torch.float64, requires_grad=True)
    IntegerSpike.apply(h, 4).sum().backward()
    assert h.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("mode", [{}, {"binary": True}])
def test_surrogate_gradients_parallel_equal_sequential(mode):
    neuron = make(3, **mode)
    x = 1.0 + torch.randn(2, 17, 3, dtype=torch.float64)
    upstream = torch.randn_like(x)
    grads = []
    for run in (neuron.forward, neuron.forward_sequential):
        neuron.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_(True)
        (run(xi) * upstream).sum().backward()
        grads.append([xi.grad, neuron.decay_weight.grad, neuron.decay_bias.grad])
    for par, seq in zip(*grads):
        assert par.abs().sum() > 0
        torch.testing.assert_close(par, seq, rtol=0, atol=F64_ATOL)


class _Potential(nn.Module):
    """Exposes the DSN's parallel potential as ``forward`` so ``functional_call`` can swap its weights."""

    def __init__(self, neuron: DSN):
        super().__init__()
        self.neuron = neuron

    def forward(self, x):
        return self.neuron.potential(x)


def test_potential_gradcheck():
    """The membrane is smooth in x and the decay conv: check the scan's custom backward numerically."""
    neuron = make(2, kernel_size=3)
    wrapper = _Potential(neuron)
    x = torch.randn(2, 9, 2, dtype=torch.float64, requires_grad=True)
    weight = neuron.decay_weight.detach().clone().requires_grad_(True)
    bias = neuron.decay_bias.detach().clone().requires_grad_(True)

    def potential(x, weight, bias):
        return functional_call(wrapper, {"neuron.decay_weight": weight, "neuron.decay_bias": bias}, (x,))

    assert torch.autograd.gradcheck(potential, (x, weight, bias))


def test_stable_at_32k_and_streams_with_bounded_state():
    """L = 32,768 in float32 with slow decays whose running product underflows to 0:
    the scan stays finite and equals 32,768 steps of the O(1)-state step form."""
    length = 32_768
    neuron = make(3, torch.float32)
    with torch.no_grad():
        neuron.decay_bias.fill_(4.0)  # alpha ~ sigmoid(4)^4 ~ 0.93: long memory
    x = 1.0 + torch.randn(1, length, 3, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        alpha = torch.exp(torch.nn.functional.logsigmoid(neuron.decay_logits(x)) / neuron.tau)
        # the running decay product leaves float32's normal range: dividing by it would overflow
        assert (torch.prod(alpha, 1) < torch.finfo(torch.float32).tiny).all()
        h_par = neuron.potential(x)
        s_par = neuron(x)
        state = neuron.init_state(1)
        potentials = []
        for t in range(length):
            h_t, state = neuron.potential_step(x[:, t], state)
            potentials.append(h_t)
    h_step = torch.stack(potentials, 1)
    assert torch.isfinite(h_par).all() and torch.isfinite(h_step).all()
    assert state.h.shape == (1, 3) and state.window.shape == (1, 3, 3)  # O(1) state after 32k steps
    torch.testing.assert_close(h_step, h_par, rtol=F32_TOL, atol=F32_TOL)
    assert_spikes_agree(neuron.fire(h_step), s_par, h_par, neuron, torch.float32)


def test_init_tags_and_shapes():
    neuron = make(5, torch.float32, kernel_size=4)
    assert neuron.decay_weight.shape == (5, 4) and neuron.decay_bias.shape == (5,)
    assert neuron.decay_weight.abs().max() <= 0.5 and neuron.decay_bias.abs().max() <= 0.5  # +-1/sqrt(k)
    assert {group_of(p) for p in neuron.parameters()} == {"dynamics"}
    assert make(5, binary=True).n_levels == 1 and make(5).n_levels == 4


def test_errors():
    with pytest.raises(ValueError, match=r"DSN has d_model=4 channels, input has 3"):
        DSN(4)(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="batch, length, channels"):
        DSN(4).forward_sequential(torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"^DSN: kernel_size=0: expected an integer >= 1$"):
        DSN(4, kernel_size=0)
    with pytest.raises(ValueError, match=r"^DSN: n_levels=0: expected an integer >= 1$"):
        DSN(4, n_levels=0)
    with pytest.raises(ValueError, match=r"^DSN: tau=0.0: expected a number > 0$"):
        DSN(4, tau=0.0)
    # one error names every bad option
    with pytest.raises(ValueError, match=r"^DSN: kernel_size=0: .*; tau=-1: .*; binary='yes': expected true or false$"):
        DSN(4, kernel_size=0, tau=-1, binary="yes")
