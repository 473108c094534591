"""The compiled CPU path of the LIF (lra_snn/ops/lif/compiled.py) against its time loop: spikes and counts
bit for bit in float32 and float64 (odd lengths, one row and more rows than threads, channel counts
off the vector width, non-contiguous input, margins exactly at and within 1e-9 of the threshold),
gradients equal to autograd through the loop for every surrogate and either reset, the same results
on one and two threads, and the dispatch choosing it on CPU tensors."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops.lif import lif
from lra_snn.ops.lif.naive import lif_naive
from lra_snn.ops.surrogate import SURROGATES

SHAPES = [(1, 1, 5), (3, 7, 13), (2, 33, 8), (5, 1001, 3)]


def random(shape, seed, dtype):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def near_threshold(shape, seed, dtype):
    """Inputs on a grid of quarters (with beta = 0.5 and V_th = 1 many margins are exactly 0), some
    moved by 1e-9: spikes decided by ``>=`` at the threshold or by the last bits of the margin."""
    generator = torch.Generator().manual_seed(seed)
    grid = torch.randint(-2, 7, shape, generator=generator).to(dtype) / 4
    nudge = torch.randint(-1, 2, shape, generator=generator).to(dtype) * 1e-9
    return grid + nudge


@pytest.fixture
def threads():
    """Set torch's thread count for one call (restored after the test)."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("detach_reset", [True, False])
def test_spikes_and_counts_equal_the_loop_bit_for_bit(dtype, shape, detach_reset):
    for x in (0.4 + 0.8 * random(shape, 1, dtype), near_threshold(shape, 2, dtype)):
        expected = lif_naive(x, 0.5, 1.0, "atan", detach_reset)
        got = lif(x, 0.5, 1.0, "atan", detach_reset, backend="compiled")
        assert got[0].dtype == dtype and got[1].dtype == dtype
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_margins_at_the_threshold_occur_and_match():
    x = near_threshold((4, 33, 13), 3, torch.float64)
    potential, offset, margins = torch.zeros(4, 13, dtype=torch.float64), torch.zeros(4, 13, dtype=torch.float64), []
    for x_t in x.unbind(1):
        potential = 0.5 * potential + x_t
        margins.append(potential - 1.0 - offset)
        offset = 0.5 * (offset + (margins[-1] >= 0).double())
    margins = torch.stack(margins, 1)
    assert (margins == 0).any() and ((margins.abs() < 1e-8) & (margins != 0)).any()
    assert torch.equal(lif(x, 0.5, 1.0, backend="compiled")[0], (margins >= 0).double())


def test_non_contiguous_input_and_other_constants():
    x = random((13, 40, 3), 4, torch.float32).transpose(0, 2)  # (3, 40, 13), strided
    for beta, v_th in [(0.0, 0.3), (1.0, 2.0), (0.9, -0.5)]:
        expected = lif_naive(x, beta, v_th, "rect")
        got = lif(x, beta, v_th, "rect", backend="compiled")
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("length", [1, 7, 33])
def test_gradients_equal_autograd_through_the_loop(surrogate, detach_reset, length):
    x = (0.4 + 0.8 * random((3, length, 11), 5, torch.float64)).requires_grad_()
    grad_spikes = random((3, length, 11), 6, torch.float64)
    (expected,) = torch.autograd.grad(lif_naive(x, 0.6, 1.0, surrogate, detach_reset)[0], x, grad_spikes)
    (got,) = torch.autograd.grad(lif(x, 0.6, 1.0, surrogate, detach_reset, backend="compiled")[0], x, grad_spikes)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_float32_gradients_agree_within_rounding():
    x = (0.4 + 0.8 * random((2, 33, 9), 7, torch.float32)).requires_grad_()
    grad_spikes = random((2, 33, 9), 8, torch.float32)
    for detach_reset in (True, False):
        (expected,) = torch.autograd.grad(lif_naive(x, 0.6, 1.0, "atan", detach_reset)[0], x, grad_spikes)
        (got,) = torch.autograd.grad(lif(x, 0.6, 1.0, "atan", detach_reset, backend="compiled")[0], x, grad_spikes)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 65, 40), (3, 65, 37)])  # one row split into channel blocks; rows > threads
def test_one_and_two_threads_give_the_same_results(shape, threads):
    x = (0.4 + 0.8 * random(shape, 9, torch.float64)).requires_grad_()
    grad_spikes = random(shape, 10, torch.float64)
    results = []
    for count in (1, 2):
        threads(count)
        spikes, counts = lif(x, 0.6, 1.0, "triangle", False, backend="compiled")
        results.append((spikes, counts, *torch.autograd.grad(spikes, x, grad_spikes)))
    assert all(torch.equal(a, b) for a, b in zip(*results))
    assert torch.equal(results[0][0], lif_naive(x, 0.6, 1.0, "triangle", False)[0])


def test_the_dispatch_chooses_the_compiled_loop_on_cpu(chosen_backends):
    x = random((2, 5, 3), 11, torch.float32)
    lif(x, 0.5, 1.0)
    lif(x.half(), 0.5, 1.0)
    assert chosen_backends == [("lif", "compiled"), ("lif", "torch")]
