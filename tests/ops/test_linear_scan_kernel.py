"""Real first-order scan (lra_snn/ops/linear_scan): Triton kernel (interpreter on CPU) and PyTorch
path against the time loop, forward and gradients in a, b and h0 (docs/kernels.md, "Correctness
without a GPU")."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops.linear_scan import linear_scan
from lra_snn.ops.linear_scan.naive import linear_scan_naive


def scan_inputs(batch: int, length: int, channels: int, per_step: bool, dtype: torch.dtype, device, seed: int = 0):
    """Random decays in (0.05, 0.95) (never 0 or 1), inputs and h0 away from zero."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, length, channels) if per_step else (channels,)
    a = 0.05 + 0.9 * torch.rand(shape, generator=g, dtype=torch.float64)
    b = torch.randn(batch, length, channels, generator=g, dtype=torch.float64) + 0.1
    h0 = torch.randn(batch, channels, generator=g, dtype=torch.float64) + 0.1
    dy = torch.randn(batch, length, channels, generator=g, dtype=torch.float64)
    return [t.to(device=device, dtype=dtype) for t in (a, b, h0, dy)]


def value_and_grads(fn, inputs, dy):
    leaves = [t.clone().requires_grad_() for t in inputs]
    out = fn(*leaves)
    return [out.detach(), *torch.autograd.grad(out, leaves, dy)]


def assert_close_all(got, expected, **tolerance):
    for name, g, e in zip(("h", "da", "db", "dh0"), got, expected):
        assert not torch.isnan(g).any(), f"{name}: the kernel left unwritten (NaN) elements"
        torch.testing.assert_close(g, e, msg=lambda m, n=name: f"{n}: {m}", **tolerance)


@pytest.mark.parametrize("per_step", [True, False], ids=["per_step", "per_channel"])
@pytest.mark.parametrize("length", [1, 7, 33])
def test_triton_scan_matches_loop_float64(per_step, length, device):
    # 19 channels: two 16-wide channel tiles under the interpreter, the second partly masked
    a, b, h0, dy = scan_inputs(2, length, 19, per_step, torch.float64, device)
    got = value_and_grads(lambda *t: linear_scan(*t, backend="triton"), (a, b, h0), dy)
    expected = value_and_grads(linear_scan_naive, (a, b, h0), dy)
    assert_close_all(got, expected, rtol=1e-10, atol=1e-11)


@pytest.mark.slow
def test_triton_scan_on_a_long_odd_sequence(device):
    # 1,001 steps: 63 chunks under the interpreter, each carrying the state of the one before
    a, b, h0, dy = scan_inputs(1, 1001, 3, True, torch.float64, device, seed=3)
    got = value_and_grads(lambda *t: linear_scan(*t, backend="triton"), (a, b, h0), dy)
    expected = value_and_grads(linear_scan_naive, (a, b, h0), dy)
    assert_close_all(got, expected, rtol=1e-10, atol=1e-11)


@pytest.mark.slow
@pytest.mark.parametrize("per_step", [True, False], ids=["per_step", "per_channel"])
def test_triton_scan_float32_many_chunks(per_step, device):
    # float32 over 257 steps: errors of the chunked products and carries stay within ~1e-5
    # relative (decays below 0.95 keep every partial product well conditioned).
    a, b, h0, dy = scan_inputs(2, 257, 5, per_step, torch.float32, device, seed=1)
    got = value_and_grads(lambda *t: linear_scan(*t, backend="triton"), (a, b, h0), dy)
    expected = value_and_grads(linear_scan_naive, *[[t.double() for t in (a, b, h0)], dy.double()])
    assert_close_all(got, [e.float() for e in expected], rtol=2e-5, atol=2e-5)


def test_triton_scan_without_h0_and_without_decay_gradient(device):
    a, b, _, dy = scan_inputs(3, 20, 4, True, torch.float64, device, seed=2)
    bt = b.clone().requires_grad_()
    out = linear_scan(a, bt, backend="triton")
    (db,) = torch.autograd.grad(out, bt, dy)
    bs = b.clone().requires_grad_()
    ref = linear_scan_naive(a, bs)
    (db_ref,) = torch.autograd.grad(ref, bs, dy)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(db, db_ref, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("per_step", [True, False], ids=["per_step", "per_channel"])
def test_torch_path_complex_gradients_are_conjugated(per_step):
    # the PyTorch doubling scan doubles as the complex reference: its backward must conjugate
    g = torch.Generator().manual_seed(3)
    shape = (2, 9, 3) if per_step else (3,)
    a = torch.polar(
        0.3 + 0.6 * torch.rand(shape, generator=g, dtype=torch.float64),
        torch.randn(shape, generator=g, dtype=torch.float64),
    )
    b = torch.randn(2, 9, 3, generator=g, dtype=torch.complex128)
    h0 = torch.randn(2, 3, generator=g, dtype=torch.complex128)
    dy = torch.randn(2, 9, 3, generator=g, dtype=torch.complex128)
    got = value_and_grads(lambda *t: linear_scan(*t, backend="torch"), (a, b, h0), dy)
    expected = value_and_grads(linear_scan_naive, (a, b, h0), dy)
    assert_close_all(got, expected, rtol=1e-10, atol=1e-11)


@pytest.mark.gpu
@pytest.mark.parametrize("per_step", [True, False], ids=["per_step", "per_channel"])
def test_triton_scan_full_size_on_gpu(per_step, device):
    # float32 at B=4, L=16,384, D=256 against float64 PyTorch: GPU rounding (FMA) included
    a, b, h0, dy = scan_inputs(4, 16384, 256, per_step, torch.float32, device, seed=4)
    got = value_and_grads(lambda *t: linear_scan(*t, backend="triton"), (a, b, h0), dy)
    expected = value_and_grads(
        lambda *t: linear_scan(*t, backend="torch"), [t.double() for t in (a, b, h0)], dy.double()
    )
    assert_close_all(got, [e.float() for e in expected], rtol=1e-4, atol=1e-4)
