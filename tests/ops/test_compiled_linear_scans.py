"""The compiled CPU paths of the first-order scans (lra_snn/ops/linear_scan, leaky_integrate and
complex_scan, each ``compiled.py``) against the time loop: real states bit for bit in float32 and float64
(odd lengths, one row and more rows than threads, channel counts off the vector width, non-contiguous
inputs, per-channel and per-step decays, with and without h0); complex states within float rounding
(PyTorch's own complex multiply rounds differently in its vectorised body and its scalar tail, so no
loop equals it bit for bit at every position); gradients equal to autograd through the loop; the same
results on one and two threads; and the dispatch choosing them on CPU tensors."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops.complex_scan import complex_scan
from lra_snn.ops.complex_scan.naive import complex_scan_naive
from lra_snn.ops.leaky_integrate import leaky_integrate
from lra_snn.ops.leaky_integrate.naive import leaky_integrate_naive
from lra_snn.ops.linear_scan import linear_scan
from lra_snn.ops.linear_scan.naive import linear_scan_naive

SHAPES = [(1, 1, 5), (3, 7, 13), (2, 33, 8), (5, 1001, 3)]


def random(shape, seed, dtype=torch.float64, low=None, high=None):
    generator = torch.Generator().manual_seed(seed)
    if low is None:
        return torch.randn(shape, generator=generator, dtype=dtype)
    return torch.rand(shape, generator=generator, dtype=dtype) * (high - low) + low


def decays(kind, shape, seed, dtype):
    """A per-channel (D,) or per-step (B, L, D) real decay in (-1, 1)."""
    return random(shape[-1:] if kind == "per_channel" else shape, seed, dtype, -0.95, 0.95)


def complex_decays(kind, shape, seed, dtype):
    size = shape[-1:] if kind == "per_channel" else shape
    real = torch.polar(random(size, seed, torch.float64, 0.3, 0.95), random(size, seed + 1))
    return real.to(dtype)


@pytest.fixture
def threads():
    """Set torch's thread count for one call (restored after the test)."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["per_channel", "per_step"])
def test_linear_scan_equals_the_loop_bit_for_bit(dtype, shape, kind):
    a, b, h0 = decays(kind, shape, 1, dtype), random(shape, 2, dtype), random(shape[::2], 3, dtype)
    for initial in (None, h0):
        got = linear_scan(a, b, initial, backend="compiled")
        assert got.dtype == dtype and torch.equal(got, linear_scan_naive(a, b, initial))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_leaky_integration_equals_the_loop_bit_for_bit(dtype, shape):
    x = random(shape, 4, dtype)
    for decay in (0.0, 0.3, 0.9, 1.0):
        assert torch.equal(leaky_integrate(x, decay, backend="compiled"), leaky_integrate_naive(x, decay))


def test_non_contiguous_inputs():
    b = random((13, 40, 3), 5, torch.float32).transpose(0, 2)
    a = random((13, 40, 3), 6, torch.float32, -0.9, 0.9).transpose(0, 2)
    h0 = random((13, 3), 7, torch.float32).t()
    assert torch.equal(linear_scan(a, b, h0, backend="compiled"), linear_scan_naive(a, b, h0))
    assert torch.equal(leaky_integrate(b, 0.7, backend="compiled"), leaky_integrate_naive(b, 0.7))
    z = torch.complex(b, a)
    torch.testing.assert_close(
        complex_scan(z[0, 0], z, z[:, 0], backend="compiled"), complex_scan_naive(z[0, 0], z, z[:, 0])
    )


@pytest.mark.parametrize("kind", ["per_channel", "per_step"])
@pytest.mark.parametrize("length", [1, 7, 33])
def test_linear_scan_gradients_equal_autograd_through_the_loop(kind, length):
    shape = (3, length, 11)
    inputs = [decays(kind, shape, 8, torch.float64), random(shape, 9), random((3, 11), 10)]
    dy = random(shape, 11)
    for with_h0 in (True, False):
        for wanted in ([0, 1, 2], [1]):  # every input, or b alone (the decay's gradient skipped)
            leaves = [t.clone().requires_grad_(i in wanted) for i, t in enumerate(inputs)]
            h0 = leaves[2] if with_h0 else None
            targets = [leaves[i] for i in wanted if with_h0 or i != 2]
            expected = torch.autograd.grad(linear_scan_naive(leaves[0], leaves[1], h0), targets, dy)
            got = torch.autograd.grad(linear_scan(leaves[0], leaves[1], h0, backend="compiled"), targets, dy)
            for g, e in zip(got, expected):
                assert g.shape == e.shape
                torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)


def test_leaky_integration_gradient_equals_autograd_through_the_loop():
    x = random((3, 33, 11), 12).requires_grad_()
    dy = random((3, 33, 11), 13)
    (expected,) = torch.autograd.grad(leaky_integrate_naive(x, 0.8), x, dy)
    (got,) = torch.autograd.grad(leaky_integrate(x, 0.8, backend="compiled"), x, dy)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["per_channel", "per_step"])
def test_complex_scan_equals_the_loop_within_rounding(dtype, shape, kind):
    a, b = complex_decays(kind, shape, 14, dtype), random(shape, 16).to(dtype) + 1j * random(shape, 17).to(dtype)
    h0 = random(shape[::2], 18).to(dtype)
    tolerance = 1e-5 if dtype == torch.complex64 else 1e-13
    for initial in (None, h0):
        got = complex_scan(a, b, initial, backend="compiled")
        assert got.dtype == dtype
        torch.testing.assert_close(got, complex_scan_naive(a, b, initial), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("kind", ["per_channel", "per_step"])
@pytest.mark.parametrize("length", [1, 7, 33])
def test_complex_scan_gradients_equal_autograd_through_the_loop(kind, length):
    shape = (3, length, 11)
    inputs = [
        complex_decays(kind, shape, 19, torch.complex128),
        random(shape, 21).to(torch.complex128) + 1j * random(shape, 22),
        random((3, 11), 23).to(torch.complex128) + 1j * random((3, 11), 24),
    ]
    dy = random(shape, 25).to(torch.complex128) + 1j * random(shape, 26)
    leaves = [t.clone().requires_grad_() for t in inputs]
    expected = torch.autograd.grad(complex_scan_naive(*leaves), leaves, dy)
    got = torch.autograd.grad(complex_scan(*leaves, backend="compiled"), leaves, dy)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 65, 40), (3, 65, 37)])  # one row split into channel blocks; rows > threads
def test_one_and_two_threads_give_the_same_results(shape, threads):
    real = [decays("per_step", shape, 27, torch.float64), random(shape, 28), random(shape[::2], 29)]
    imaginary = [complex_decays("per_channel", shape, 30, torch.complex128), real[1] + 1j * real[0], real[2] + 0j]
    results = []
    for count in (1, 2):
        threads(count)
        leaves = [t.clone().requires_grad_() for t in real + imaginary]
        h = linear_scan(*leaves[:3], backend="compiled")
        z = complex_scan(*leaves[3:], backend="compiled")
        grads = torch.autograd.grad(h.sum() + (z.real * z.imag).sum(), leaves)
        results.append((h, z, *grads))
    assert all(torch.equal(a, b) for a, b in zip(*results))
    assert torch.equal(results[0][0], linear_scan_naive(*real))


def test_the_dispatch_chooses_the_compiled_loops_on_cpu(chosen_backends):
    b = random((2, 5, 3), 31, torch.float32)
    linear_scan(torch.rand(3), b)
    leaky_integrate(b, 0.5)
    complex_scan(torch.rand(3, dtype=torch.complex64), b.to(torch.complex64))
    linear_scan(torch.rand(2, 1, 3), b)  # a decay shape the loop does not take: PyTorch
    assert chosen_backends == [
        ("linear_scan", "compiled"),
        ("leaky_integrate", "compiled"),
        ("complex_scan", "compiled"),
        ("linear_scan", "torch"),
    ]
