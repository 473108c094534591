"""The compiled CPU loop of the PRF membrane (lra_snn/ops/prf_membrane/compiled.py) against the naive
time loop: ``Re z`` bit for bit in float32 and float64 where PyTorch's vectorised complex product
computes every channel (channel counts that are multiples of 8), within rounding elsewhere (its
scalar remainder contracts ``a c - b d`` into fused multiply-adds for some elements); gradients in x, log_Delta and
theta as autograd through the naive loop; the dispatch's choice; the thread count."""

from __future__ import annotations

import math

import pytest
import torch

from lra_snn.ops import dispatch
from lra_snn.ops.prf_membrane import prf_membrane
from lra_snn.ops.prf_membrane.compiled import CHUNK, prf_membrane_compiled
from lra_snn.ops.prf_membrane.naive import prf_membrane_naive

TAU = 2.0


def inputs(batch: int, length: int, channels: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = 3 * torch.randn(batch, length, channels, generator=g, dtype=torch.float64)
    log_delta = math.log(0.01) + (math.log(0.5) - math.log(0.01)) * torch.rand(
        channels, generator=g, dtype=torch.float64
    )
    theta = 2 * torch.rand(channels, generator=g, dtype=torch.float64)
    return x.to(dtype), log_delta.to(dtype), theta.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("batch", "length", "channels"), [(1, 1, 16), (3, 7, 32), (5, 33, 16), (1, 1001, 128)])
def test_the_membrane_equals_the_naive_loop_bit_for_bit(dtype, batch, length, channels):
    x, log_delta, theta = inputs(batch, length, channels, dtype)
    expected = prf_membrane_naive(x, log_delta, theta, TAU)
    assert torch.equal(prf_membrane_compiled(x, log_delta, theta, TAU), expected)
    with torch.no_grad():
        assert torch.equal(prf_membrane_compiled(x, log_delta, theta, TAU), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [1, 5, 13, 130])
def test_other_channel_counts_agree_within_rounding(dtype, channels):
    x, log_delta, theta = inputs(3, 65, channels, dtype, seed=1)
    expected = prf_membrane_naive(x.double(), log_delta.double(), theta.double(), TAU)
    got = prf_membrane_compiled(x, log_delta, theta, TAU)
    tolerance = 1e-4 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(got.double(), expected, rtol=tolerance, atol=tolerance * expected.abs().max().item())


def test_a_non_contiguous_input_gives_the_same_membrane():
    x, log_delta, theta = inputs(4, 40, 16, torch.float32, seed=2)
    transposed = x.transpose(0, 1).contiguous().transpose(0, 1)
    assert not transposed.is_contiguous()
    assert torch.equal(
        prf_membrane_compiled(transposed, log_delta, theta, TAU), prf_membrane_naive(x, log_delta, theta, TAU)
    )


def gradients(fn, x, log_delta, theta, dy, needs=(True, True, True)):
    leaves = [t.clone().requires_grad_(need) for t, need in zip((x, log_delta, theta), needs)]
    membrane = fn(*leaves, TAU)
    wanted = [leaf for leaf in leaves if leaf.requires_grad]
    return membrane.detach(), torch.autograd.grad(membrane, wanted, dy)


@pytest.mark.parametrize("length", [1, 7, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
@pytest.mark.parametrize("channels", [5, 16])
def test_gradients_equal_autograd_through_the_naive_loop(length, channels):
    x, log_delta, theta = inputs(3, length, channels, torch.float64, seed=length)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    _, expected = gradients(prf_membrane_naive, x, log_delta, theta, dy)
    _, got = gradients(prf_membrane_compiled, x, log_delta, theta, dy)
    for name, a, b in zip(("x", "log_delta", "theta"), got, expected):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11 * b.abs().max().item(), msg=name)


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, True), (False, True, False)])
def test_each_input_alone_gets_its_gradient(needs):
    x, log_delta, theta = inputs(2, 50, 16, torch.float64, seed=3)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    _, expected = gradients(prf_membrane_naive, x, log_delta, theta, dy, needs)
    _, got = gradients(prf_membrane_compiled, x, log_delta, theta, dy, needs)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11 * b.abs().max().item())


def test_float32_gradients_are_close_to_the_float64_ones():
    x, log_delta, theta = inputs(4, 500, 16, torch.float64, seed=5)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    _, expected = gradients(prf_membrane_naive, x, log_delta, theta, dy)
    _, got = gradients(prf_membrane_compiled, x.float(), log_delta.float(), theta.float(), dy.float())
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-5 * b.abs().max().item())


def test_the_dispatch_picks_the_compiled_loop_on_the_cpu(monkeypatch):
    chosen = []
    original = dispatch.select_backend
    monkeypatch.setattr(dispatch, "select_backend", lambda *a, **k: chosen.append(original(*a, **k)) or chosen[-1])
    x, log_delta, theta = inputs(2, 9, 16, torch.float32)
    assert torch.equal(prf_membrane(x, log_delta, theta, TAU), prf_membrane_naive(x, log_delta, theta, TAU))
    assert chosen == ["compiled"]


def test_one_and_two_threads_give_identical_results():
    x, log_delta, theta = inputs(1, 200, 48, torch.float32, seed=7)  # B = 1: channel blocks split across threads
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(8))
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            membrane, grads = gradients(prf_membrane_compiled, x, log_delta, theta, dy)
            results.append((membrane, *grads))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)
