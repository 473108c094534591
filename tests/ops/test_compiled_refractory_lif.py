"""The refractory LIF's whole compiled time loop (lra_snn/ops/refractory_iteration/sequential.py)
against the definition written here as a loop of tensor operations: spikes and margins bit for bit in
float32 and float64 (margins placed within 1e-9 of the threshold too), gradients in x, V_th and rho
as autograd through the loop (reset and refractory spikes detached), every surrogate, the thread
count; and one compiled boundary-compression iteration (compiled.py) against the naive one."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops.refractory_iteration import refractory_iteration
from lra_snn.ops.refractory_iteration.compiled import refractory_iteration_compiled
from lra_snn.ops.refractory_iteration.naive import refractory_iteration_naive
from lra_snn.ops.refractory_iteration.sequential import refractory_lif_compiled
from lra_snn.ops.surrogate import SURROGATES, spike

BETA, GAMMA = 0.5, 0.3


def definition(x, v_th, rho, surrogate="atan", place=None):
    """Spikes and margins of ``u_t = beta (u_{t-1} - V_th s_{t-1}) + x_t``, ``r_t = gamma r_{t-1} + rho s_{t-1}``,
    ``s_t = H(u_t - V_th - r_t)``; ``place`` = (where, margin) replaces x_t there so that the margin is
    the given value (the inputs used are returned too)."""
    u = r = s = torch.zeros_like(x[:, 0])
    spikes, margins, inputs = [], [], []
    for t in range(x.shape[1]):
        carried = BETA * (u - v_th * s.detach())
        r = GAMMA * r + rho * s.detach()
        x_t = x[:, t] if place is None else torch.where(place[0][:, t], place[1][:, t] + v_th + r - carried, x[:, t])
        u = carried + x_t
        margin = u - v_th - r
        s = spike(margin, surrogate)
        spikes.append(s)
        margins.append(margin)
        inputs.append(x_t)
    return torch.stack(spikes, 1), torch.stack(margins, 1), torch.stack(inputs, 1)


def inputs(batch: int, length: int, channels: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = 0.8 + 1.5 * torch.randn(batch, length, channels, generator=g, dtype=torch.float64)
    v_th = 0.7 + 0.6 * torch.rand(channels, generator=g, dtype=torch.float64)
    rho = 0.2 + 0.8 * torch.rand(channels, generator=g, dtype=torch.float64)
    return x.to(dtype), v_th.to(dtype), rho.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("batch", "length", "channels"), [(1, 1, 13), (5, 7, 16), (3, 33, 5), (1, 1001, 130)])
def test_spikes_and_margins_equal_the_definition_bit_for_bit(dtype, batch, length, channels):
    x, v_th, rho = inputs(batch, length, channels, dtype, seed=length)
    spikes, margins, _ = definition(x, v_th, rho)
    got_spikes, got_margins = refractory_lif_compiled(x, v_th, rho, BETA, GAMMA, "atan")
    assert torch.equal(got_spikes, spikes) and torch.equal(got_margins, margins)
    assert 0.05 < spikes.mean() < 0.95


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_margins_within_1e9_of_the_threshold_give_the_definitions_spikes(dtype):
    x, v_th, rho = inputs(4, 33, 13, dtype, seed=1)
    g = torch.Generator().manual_seed(2)
    where = torch.rand(x.shape, generator=g) < 0.5
    size = 1e-9 * (0.1 + 0.9 * torch.rand(x.shape, generator=g, dtype=torch.float64))
    target = torch.where(torch.rand(x.shape, generator=g) < 0.5, -size, size).to(dtype)
    spikes, margins, placed = definition(x, v_th, rho, place=(where, target))
    assert (margins.abs() < 1e-6).float().mean() > 0.3
    got_spikes, got_margins = refractory_lif_compiled(placed, v_th, rho, BETA, GAMMA, "atan")
    assert torch.equal(got_spikes, spikes) and torch.equal(got_margins, margins)


def test_a_non_contiguous_input_gives_the_same_spikes():
    x, v_th, rho = inputs(4, 40, 16, torch.float32, seed=3)
    strided = x.transpose(0, 1).contiguous().transpose(0, 1)
    assert not strided.is_contiguous()
    assert torch.equal(refractory_lif_compiled(strided, v_th, rho, BETA, GAMMA, "atan")[0], definition(x, v_th, rho)[0])


def gradients(x, v_th, rho, dy, surrogate, compiled: bool):
    leaves = [t.clone().requires_grad_() for t in (x, v_th, rho)]
    if compiled:
        spikes = refractory_lif_compiled(*leaves, BETA, GAMMA, surrogate)[0]
    else:
        spikes = definition(*leaves, surrogate)[0]
    return torch.autograd.grad(spikes, leaves, dy)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("length", [1, 7, 65])
def test_gradients_equal_autograd_through_the_definition(surrogate, length):
    x, v_th, rho = inputs(3, length, 13, torch.float64, seed=4)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = gradients(x, v_th, rho, dy, surrogate, compiled=False)
    got = gradients(x, v_th, rho, dy, surrogate, compiled=True)
    for name, a, b in zip(("x", "v_th", "rho"), got, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)
    if length == 65:
        assert all((g.abs() > 0).any() for g in got)


def test_the_margins_carry_no_gradient_and_the_surrogate_name_is_checked():
    x, v_th, rho = inputs(2, 9, 5, torch.float64)
    spikes, margins = refractory_lif_compiled(x.requires_grad_(), v_th, rho, BETA, GAMMA, "rect")
    assert spikes.requires_grad and not margins.requires_grad
    with pytest.raises(ValueError, match="surrogate"):
        refractory_lif_compiled(x, v_th, rho, BETA, GAMMA, "sigmoid")


def test_one_and_two_threads_give_identical_results():
    x, v_th, rho = inputs(1, 200, 48, torch.float32, seed=6)  # B = 1: channel blocks split across threads
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            spikes, margins = refractory_lif_compiled(x, v_th, rho, BETA, GAMMA, "triangle")
            results.append((spikes, margins, *gradients(x, v_th, rho, dy, "triangle", compiled=True)))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("batch", "length", "channels"), [(1, 1, 13), (5, 33, 16), (1, 1001, 5)])
def test_one_compiled_iteration_equals_the_naive_iteration_bit_for_bit(dtype, batch, length, channels):
    x, v_th, rho = inputs(batch, length, channels, dtype, seed=8)
    iterate = (torch.rand(x.shape, generator=torch.Generator().manual_seed(9)) < 0.4).to(dtype)
    expected = refractory_iteration_naive(x, iterate, v_th, rho, BETA, GAMMA)
    got = refractory_iteration_compiled(x, iterate, v_th, rho, BETA, GAMMA)
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)


def test_the_dispatch_picks_the_compiled_iteration_for_per_channel_parameters_of_one_dtype(chosen_backends):
    x, v_th, rho = inputs(2, 9, 5, torch.float64)
    iterate = (x > 1).double()
    refractory_iteration(x, iterate, v_th, rho, BETA, GAMMA)
    refractory_iteration(x, iterate, v_th.float(), rho, BETA, GAMMA)  # mixed dtypes: the PyTorch path
    refractory_iteration(x, iterate, v_th[:1], rho, BETA, GAMMA)  # broadcast V_th: the PyTorch path
    assert [backend for _, backend in chosen_backends] == ["compiled", "torch", "torch"]
