"""The compiled CPU paths of the threshold scan (lra_snn/ops/threshold_scan/compiled.py) and of the hard-reset
LIF (lra_snn/ops/hard_reset_scan/compiled.py) against their time loops: spikes, offsets and potentials
bit for bit in float32 and float64 (odd lengths, one row and more rows than threads, channel counts off
the vector width, non-contiguous input, margins at and within 1e-9 of the threshold, scalar and
per-channel parameters), gradients equal to autograd through the loops for every surrogate and
reset, the same results on one and two threads, and the dispatch choosing them on CPU tensors."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops.hard_reset_scan import hard_reset_scan
from lra_snn.ops.hard_reset_scan.naive import hard_reset_scan_naive
from lra_snn.ops.surrogate import SURROGATES
from lra_snn.ops.threshold_scan import threshold_scan
from lra_snn.ops.threshold_scan.naive import threshold_scan_naive

SHAPES = [(1, 1, 5), (3, 7, 13), (2, 33, 8), (5, 1001, 3)]
DTYPES = [torch.float32, torch.float64]


def random(shape, seed, dtype=torch.float64, low=None, high=None):
    generator = torch.Generator().manual_seed(seed)
    if low is None:
        return torch.randn(shape, generator=generator, dtype=dtype)
    return torch.rand(shape, generator=generator, dtype=dtype) * (high - low) + low


def near_threshold(shape, seed, dtype):
    """Values on a grid of quarters (exact sums and halvings: many margins exactly 0), some moved by 1e-9."""
    generator = torch.Generator().manual_seed(seed)
    grid = torch.randint(-2, 7, shape, generator=generator).to(dtype) / 4
    return grid + torch.randint(-1, 2, shape, generator=generator).to(dtype) * 1e-9


@pytest.fixture
def threads():
    """Set torch's thread count for one call (restored after the test)."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def parameters(kind, channels, dtype):
    """(V_th, decay): Python scalars or per-channel tensors."""
    if kind == "scalar":
        return 1.0, 0.5
    return random((channels,), 1, dtype, 0.5, 1.5), random((channels,), 2, dtype, 0.1, 0.9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["scalar", "per_channel"])
def test_threshold_scan_spikes_and_offsets_equal_the_loop_bit_for_bit(dtype, shape, kind):
    v_th, decay = parameters(kind, shape[-1], dtype)
    for excess in (random(shape, 3, dtype) + 0.3, near_threshold(shape, 4, dtype)):
        for detach_reset in (True, False):
            expected = threshold_scan_naive(excess, v_th, decay, "atan", detach_reset)
            got = threshold_scan(excess, v_th, decay, "atan", detach_reset, backend="compiled")
            assert got[0].dtype == dtype and got[1].dtype == dtype
            assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_threshold_scan_margins_at_the_threshold_occur():
    excess = near_threshold((4, 33, 13), 5, torch.float64)
    spikes, offsets = threshold_scan(excess, 1.0, 0.5, backend="compiled")
    margins = excess - offsets
    assert (margins == 0).any() and ((margins.abs() < 1e-8) & (margins != 0)).any()
    assert torch.equal(spikes, (margins >= 0).double())
    assert torch.equal(offsets, threshold_scan_naive(excess, 1.0, 0.5)[1])


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("length", [1, 7, 33])
@pytest.mark.parametrize("kind", ["scalar", "per_channel"])
def test_threshold_scan_gradients_equal_autograd_through_the_loop(surrogate, detach_reset, length, kind):
    v_th, decay = parameters(kind, 11, torch.float64)
    excess = (random((3, length, 11), 6) + 0.3).requires_grad_()
    grad_spikes = random((3, length, 11), 7)
    naive = threshold_scan_naive(excess, v_th, decay, surrogate, detach_reset)[0]
    (expected,) = torch.autograd.grad(naive, excess, grad_spikes)
    compiled = threshold_scan(excess, v_th, decay, surrogate, detach_reset, backend="compiled")[0]
    (got,) = torch.autograd.grad(compiled, excess, grad_spikes)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_threshold_scan_non_contiguous_input():
    excess = random((13, 40, 3), 8, torch.float32).transpose(0, 2)
    for got, expected in zip(
        threshold_scan(excess, 0.7, 0.3, backend="compiled"), threshold_scan_naive(excess, 0.7, 0.3)
    ):
        assert torch.equal(got, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_hard_reset_spikes_and_potentials_equal_the_loop_bit_for_bit(dtype, shape):
    for x in (random(shape, 9, dtype) + 0.5, near_threshold(shape, 10, dtype)):
        for v_th, decay in ((1.0, 0.5), (0.3, 0.7)):
            expected = hard_reset_scan_naive(x, v_th, decay)
            got = hard_reset_scan(x, v_th, decay, backend="compiled")
            assert got[0].dtype == dtype and got[1].dtype == dtype
            assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_hard_reset_margins_at_the_threshold_occur_and_non_contiguous_input():
    x = near_threshold((13, 33, 4), 11, torch.float64).transpose(0, 2)
    spikes, potentials = hard_reset_scan(x, 1.0, 0.5, backend="compiled")
    margins = potentials - 1.0
    assert (margins == 0).any() and ((margins.abs() < 1e-8) & (margins != 0)).any()
    for got, expected in zip((spikes, potentials), hard_reset_scan_naive(x, 1.0, 0.5)):
        assert torch.equal(got, expected)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("length", [1, 7, 33])
def test_hard_reset_gradients_equal_autograd_through_the_loop(surrogate, length):
    x = (random((3, length, 11), 12) + 0.5).requires_grad_()
    grad_spikes, grad_potentials = random((3, length, 11), 13), random((3, length, 11), 14)
    for weights in ((grad_spikes, grad_potentials), (grad_spikes, None), (None, grad_potentials)):

        def loss(outputs, weights=weights):
            return sum((out * w).sum() for out, w in zip(outputs, weights) if w is not None)

        (expected,) = torch.autograd.grad(loss(hard_reset_scan_naive(x, 1.0, 0.6, surrogate)), x)
        (got,) = torch.autograd.grad(loss(hard_reset_scan(x, 1.0, 0.6, surrogate, backend="compiled")), x)
        assert expected.abs().max() > 0.1
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 65, 40), (3, 65, 37)])  # one row split into channel blocks; rows > threads
def test_one_and_two_threads_give_the_same_results(shape, threads):
    x = (random(shape, 15) + 0.5).requires_grad_()
    v_th, decay = parameters("per_channel", shape[-1], torch.float64)
    weight = random(shape, 16)
    results = []
    for count in (1, 2):
        threads(count)
        scan = threshold_scan(x, v_th, decay, "triangle", False, backend="compiled")
        hard = hard_reset_scan(x, 1.0, 0.6, "atan", backend="compiled")
        outputs = (*scan, *hard)
        results.append((*outputs, *torch.autograd.grad((scan[0] * weight).sum() + (hard[1] * weight).sum(), x)))
    assert all(torch.equal(a, b) for a, b in zip(*results))
    assert torch.equal(results[0][0], threshold_scan_naive(x, v_th, decay, "triangle", False)[0])
    assert torch.equal(results[0][3], hard_reset_scan_naive(x, 1.0, 0.6, "atan")[1])


def test_the_dispatch_chooses_the_compiled_loops_on_cpu(chosen_backends):
    x = random((2, 5, 3), 17, torch.float32)
    threshold_scan(x, 1.0, 0.5)
    hard_reset_scan(x, 1.0, 0.5)
    threshold_scan(x.half(), 1.0, 0.5)
    assert chosen_backends == [
        ("threshold_scan", "compiled"),
        ("hard_reset_scan", "compiled"),
        ("threshold_scan", "torch"),
    ]
