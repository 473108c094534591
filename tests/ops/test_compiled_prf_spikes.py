"""The fused compiled PRF spikes (lra_snn/ops/prf_spikes/compiled.py) against the naive time loop: spikes
bit for bit in float32 and float64 where the membrane is (channel counts that are multiples of 8, as in
tests/ops/test_compiled_prf_membrane.py; odd lengths, one row and more rows than threads, non-contiguous
input), elsewhere the compiled membrane's spikes bit for bit and the naive ones except within rounding of
the threshold; gradients in x, log_Delta and theta as autograd through the naive loop for every
surrogate, also with margins exactly at and within 1e-7 of the threshold; one and two threads; the
dispatch's choice and the surrogates it compiles."""

from __future__ import annotations

import math

import pytest
import torch

from lra_snn.ops.prf_membrane.compiled import CHUNK, prf_membrane_compiled
from lra_snn.ops.prf_membrane.naive import prf_dynamics, prf_membrane_naive
from lra_snn.ops.prf_spikes import prf_spikes
from lra_snn.ops.prf_spikes.compiled import prf_spikes_compiled
from lra_snn.ops.prf_spikes.naive import prf_spikes_naive
from lra_snn.ops.surrogate import SURROGATES

TAU = 2.0
V_TH = 0.5
MORE_ROWS_THAN_THREADS = torch.get_num_threads() + 1


def inputs(batch: int, length: int, channels: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = 3 * torch.randn(batch, length, channels, generator=g, dtype=torch.float64)
    log_delta = math.log(0.01) + (math.log(0.5) - math.log(0.01)) * torch.rand(
        channels, generator=g, dtype=torch.float64
    )
    theta = 2 * torch.rand(channels, generator=g, dtype=torch.float64)
    return x.to(dtype), log_delta.to(dtype), theta.to(dtype)


def near_threshold(batch: int, length: int, channels: int, seed: int = 1):
    """float64 inputs putting the naive loop's ``Re z_t - V_th`` exactly at 0 at about a sixth of the steps
    (the input nudged ulp by ulp until the loop's own arithmetic lands on V_th) and within 1e-9..1e-7 of 0
    (either side) at about a third; with the dynamics, the steps at 0 and the steps within 1e-7 above
    and below."""
    x, log_delta, theta = inputs(batch, length, channels, torch.float64, seed)
    g = torch.Generator().manual_seed(seed + 1)
    planted = torch.rand(batch, length, channels, generator=g) < 0.5
    exact = planted & (torch.rand(batch, length, channels, generator=g) < 1 / 3)
    above = torch.rand(batch, length, channels, generator=g) < 0.5
    offset = torch.rand(batch, length, channels, generator=g, dtype=torch.float64) * 0.99e-7 + 1e-9
    offset = torch.where(exact, 0.0, torch.where(above, offset, -offset))
    delta, real_a, imag_a = prf_dynamics(log_delta, theta, TAU)
    rotation = torch.complex(real_a, imag_a)
    z = torch.zeros(batch, channels, dtype=rotation.dtype)
    steps = []
    for t in range(length):
        carried = rotation * z  # the naive loop's operations
        x_t = torch.where(planted[:, t], (V_TH - carried.real + offset[:, t]) / delta, x[:, t])
        for _ in range(8):
            real = (carried + delta * x_t).real
            toward = torch.where(real < V_TH, math.inf, -math.inf)
            x_t = torch.where(exact[:, t] & (real != V_TH), torch.nextafter(x_t, toward), x_t)
        z = carried + delta * x_t
        steps.append(x_t)
    return torch.stack(steps, 1), log_delta, theta, exact, planted & ~exact & above, planted & ~exact & ~above


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("batch", "length", "channels"), [(1, 1, 16), (3, 7, 32), (MORE_ROWS_THAN_THREADS, 33, 16), (1, 1001, 128)]
)
def test_the_spikes_equal_the_naive_loop_bit_for_bit(dtype, batch, length, channels):
    x, log_delta, theta = inputs(batch, length, channels, dtype)
    expected = prf_spikes_naive(x, log_delta, theta, TAU, V_TH)
    assert 0.05 < expected.mean() < 0.95
    assert torch.equal(prf_spikes_compiled(x, log_delta, theta, TAU, V_TH), expected)
    with torch.no_grad():
        assert torch.equal(prf_spikes_compiled(x, log_delta, theta, TAU, V_TH), expected)
    leaf = x.clone().requires_grad_()  # the forward that keeps checkpoints
    assert torch.equal(prf_spikes_compiled(leaf, log_delta, theta, TAU, V_TH).detach(), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [1, 5, 13, 130])
def test_other_channel_counts_spike_as_the_compiled_membrane(dtype, channels):
    """Bit for bit the compiled membrane's spikes (the same loop); the naive loop's wherever its margin is
    beyond rounding of the threshold (the membranes agree to rounding there, as their test says)."""
    x, log_delta, theta = inputs(MORE_ROWS_THAN_THREADS, 65, channels, dtype, seed=1)
    got = prf_spikes_compiled(x, log_delta, theta, TAU, V_TH)
    assert torch.equal(got, (prf_membrane_compiled(x, log_delta, theta, TAU) - V_TH >= 0).to(dtype))
    margin = prf_membrane_naive(x.double(), log_delta.double(), theta.double(), TAU) - V_TH
    rounding = 1e-4 if dtype == torch.float32 else 1e-12
    beyond = margin.abs() > rounding * (margin.abs().max().item() + V_TH)
    assert beyond.float().mean() > 0.95
    assert torch.equal(got[beyond], (margin[beyond] >= 0).to(dtype))


def test_a_non_contiguous_input_gives_the_same_spikes():
    x, log_delta, theta = inputs(4, 40, 16, torch.float32, seed=2)
    transposed = x.transpose(0, 1).contiguous().transpose(0, 1)
    assert not transposed.is_contiguous()
    expected = prf_spikes_naive(x, log_delta, theta, TAU, V_TH)
    assert torch.equal(prf_spikes_compiled(transposed, log_delta, theta, TAU, V_TH), expected)
    assert torch.equal(prf_spikes_compiled(transposed.requires_grad_(), log_delta, theta, TAU, V_TH), expected)


def gradients(fn, x, log_delta, theta, dy, surrogate="atan", needs=(True, True, True)):
    leaves = [t.clone().requires_grad_(need) for t, need in zip((x, log_delta, theta), needs)]
    spikes = fn(*leaves, TAU, V_TH, surrogate)
    wanted = [leaf for leaf in leaves if leaf.requires_grad]
    return spikes.detach(), torch.autograd.grad(spikes, wanted, dy)


def assert_gradients_agree(got, expected, tolerance=1e-12):
    assert expected[0].abs().max() > 0  # the surrogate reaches x
    for name, a, b in zip(("x", "log_delta", "theta"), got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance * b.abs().max().item(), msg=name)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("length", [1, 7, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
@pytest.mark.parametrize("channels", [5, 16])
def test_gradients_equal_autograd_through_the_naive_loop(surrogate, length, channels):
    x, log_delta, theta = inputs(3, length, channels, torch.float64, seed=length)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    _, expected = gradients(prf_spikes_naive, x, log_delta, theta, dy, surrogate)
    _, got = gradients(prf_spikes_compiled, x, log_delta, theta, dy, surrogate)
    assert_gradients_agree(got, expected)


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_margins_at_and_near_the_threshold_give_the_naive_spikes_and_gradients(surrogate):
    x, log_delta, theta, exact, above, below = near_threshold(2, 150, 16)
    margin = prf_membrane_naive(x, log_delta, theta, TAU) - V_TH
    assert (margin[exact] == 0).float().mean() > 0.9 and exact.float().mean() > 0.1
    assert (margin[above] > 0).all() and (margin[below] < 0).all() and (margin[above | below].abs() < 1.1e-7).all()
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected_spikes, expected = gradients(prf_spikes_naive, x, log_delta, theta, dy, surrogate)
    spikes, got = gradients(prf_spikes_compiled, x, log_delta, theta, dy, surrogate)
    assert torch.equal(spikes, expected_spikes)
    assert torch.equal(spikes, (margin >= 0).double())
    assert_gradients_agree(got, expected)


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, True), (False, True, False)])
def test_each_input_alone_gets_its_gradient(needs):
    x, log_delta, theta = inputs(2, 50, 16, torch.float64, seed=3)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    _, expected = gradients(prf_spikes_naive, x, log_delta, theta, dy, "triangle", needs)
    _, got = gradients(prf_spikes_compiled, x, log_delta, theta, dy, "triangle", needs)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12 * b.abs().max().item())


def test_float32_gradients_are_close_to_the_float64_ones():
    x, log_delta, theta = inputs(4, 300, 16, torch.float64, seed=5)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    _, expected = gradients(prf_spikes_naive, x, log_delta, theta, dy)
    _, got = gradients(prf_spikes_compiled, x.float(), log_delta.float(), theta.float(), dy.float())
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_one_and_two_threads_give_identical_results():
    x, log_delta, theta = inputs(1, 200, 48, torch.float32, seed=7)  # B = 1: channel blocks split across threads
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(8))
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            spikes, grads = gradients(prf_spikes_compiled, x, log_delta, theta, dy, "rect")
            results.append((spikes, *grads))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0][0], prf_spikes_naive(x, log_delta, theta, TAU, V_TH))
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def test_the_dispatch_picks_the_compiled_loop_on_the_cpu(chosen_backends):
    x, log_delta, theta = inputs(2, 9, 16, torch.float32)
    expected = prf_spikes_naive(x, log_delta, theta, TAU, V_TH)
    assert torch.equal(prf_spikes(x, log_delta, theta, TAU, V_TH), expected)
    assert torch.equal(prf_spikes(x, log_delta, theta, TAU, V_TH, backend="torch"), expected)
    assert chosen_backends == [("prf_spikes", "compiled"), ("prf_spikes", "torch")]


def test_a_surrogate_without_a_compiled_slope_is_refused():
    x, log_delta, theta = inputs(1, 3, 8, torch.float32)
    with pytest.raises(ValueError, match="unknown surrogate 'sigmoid'"):
        prf_spikes(x, log_delta, theta, TAU, V_TH, "sigmoid")
    with pytest.raises(ValueError, match="no slope for the surrogate 'sigmoid'"):
        prf_spikes_compiled(x, log_delta, theta, TAU, V_TH, "sigmoid")
