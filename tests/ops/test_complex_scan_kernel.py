"""Complex first-order scan (lra_snn/ops/complex_scan, PRF's membrane): the Triton kernel with its
real/imag split (interpreter on CPU) against the sequential complex loop, forward and gradients."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops.complex_scan import complex_scan
from lra_snn.ops.complex_scan.naive import complex_scan_naive


def complex_inputs(batch: int, length: int, channels: int, per_step: bool, dtype: torch.dtype, device, seed: int = 0):
    """Decays of modulus in (0.3, 0.9) at random phases; inputs, h0 and the output gradient random."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, length, channels) if per_step else (channels,)
    a = torch.polar(
        0.3 + 0.6 * torch.rand(shape, generator=g, dtype=torch.float64),
        torch.randn(shape, generator=g, dtype=torch.float64),
    )
    b, dy = (torch.randn(batch, length, channels, generator=g, dtype=torch.complex128) for _ in range(2))
    h0 = torch.randn(batch, channels, generator=g, dtype=torch.complex128)
    return [t.to(device=device, dtype=dtype) for t in (a, b, h0, dy)]


def value_and_grads(fn, inputs, dy):
    leaves = [t.clone().requires_grad_() for t in inputs]
    out = fn(*leaves)
    return [out.detach(), *torch.autograd.grad(out, leaves, dy)]


@pytest.mark.parametrize("per_step", [True, False], ids=["per_step", "per_channel"])
@pytest.mark.parametrize("length", [1, 33])
def test_triton_complex_scan_matches_loop(per_step, length, device):
    a, b, h0, dy = complex_inputs(2, length, 5, per_step, torch.complex128, device)
    got = value_and_grads(lambda *t: complex_scan(*t, backend="triton"), (a, b, h0), dy)
    expected = value_and_grads(complex_scan_naive, (a, b, h0), dy)
    for name, g, e in zip(("z", "da", "db", "dh0"), got, expected):
        assert not torch.isnan(torch.view_as_real(g)).any(), f"{name}: unwritten (NaN) elements"
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-11, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.slow
def test_triton_complex_scan_on_a_long_odd_sequence(device):
    # 1,001 steps: 63 chunks under the interpreter, each carrying the state of the one before
    a, b, h0, dy = complex_inputs(1, 1001, 3, False, torch.complex128, device, seed=3)
    got = value_and_grads(lambda *t: complex_scan(*t, backend="triton"), (a, b, h0), dy)
    expected = value_and_grads(complex_scan_naive, (a, b, h0), dy)
    for name, g, e in zip(("z", "da", "db", "dh0"), got, expected):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-11, msg=lambda m, n=name: f"{n}: {m}")


def test_complex_scan_rejects_real_tensors_when_forced():
    a, b = torch.rand(3), torch.randn(2, 4, 3)
    with pytest.raises(ValueError, match="complex64/complex128"):
        complex_scan(a, b, backend="triton")


@pytest.mark.gpu
def test_triton_complex_scan_full_size_on_gpu(device):
    # complex64 at B=4, L=16,384, D=256 against complex128 PyTorch (GPU rounding included)
    a, b, h0, dy = complex_inputs(4, 16384, 256, False, torch.complex64, device, seed=1)
    got = value_and_grads(lambda *t: complex_scan(*t, backend="triton"), (a, b, h0), dy)
    expected = value_and_grads(
        lambda *t: complex_scan(*t, backend="torch"),
        [t.to(torch.complex128) for t in (a, b, h0)],
        dy.to(torch.complex128),
    )
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e.to(torch.complex64), rtol=1e-4, atol=1e-4)
