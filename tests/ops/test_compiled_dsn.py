"""The compiled CPU loop of the DSN (lra_snn/ops/dsn/compiled.py) against the naive time loop: spikes
bit for bit in float32 and float64 (integer and binary, membranes placed within 1e-9 of a crossing),
gradients in the logits and x as autograd through the naive loop, the dispatch's choice, the thread
count."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops import dispatch
from lra_snn.ops.dsn import dsn
from lra_snn.ops.dsn.compiled import dsn_compiled
from lra_snn.ops.dsn.naive import decay_and_gain, dsn_membrane_naive, dsn_naive

TAU = 0.25
OPTIONS = [(4, False), (2, False), (1, True)]  # (n_levels, binary)


def inputs(batch: int, length: int, channels: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(batch, length, channels, generator=g, dtype=torch.float64)
    x = 1 + 2 * torch.randn(batch, length, channels, generator=g, dtype=torch.float64)
    return logits.to(dtype), x.to(dtype)


def near_crossings(logits, x, n_levels: int, seed: int):
    """``x`` with about half its steps replaced so that the membrane lands within 1e-9 of a crossing
    ``n - 1/2`` (above or below), by the naive loop's own decay and membrane."""
    g = torch.Generator().manual_seed(seed)
    alpha, gain = decay_and_gain(logits, TAU)
    where = torch.rand(x.shape, generator=g) < 0.5
    sign = torch.where(torch.rand(x.shape, generator=g) < 0.5, -1.0, 1.0).to(x.dtype)
    crossing = torch.randint(0, n_levels, x.shape, generator=g).to(x.dtype) + 0.5
    target = crossing + sign * 1e-9 * (0.1 + 0.9 * torch.rand(x.shape, generator=g)).to(x.dtype)
    x = x.clone()
    h = torch.zeros_like(x[:, 0])
    for t in range(x.shape[1]):
        placed = (target[:, t] - alpha[:, t] * h) / gain[:, t]
        x[:, t] = torch.where(where[:, t] & (gain[:, t] > 1e-3), placed, x[:, t])
        h = alpha[:, t] * h + gain[:, t] * x[:, t]
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("n_levels", "binary"), OPTIONS)
@pytest.mark.parametrize(("batch", "length", "channels"), [(1, 1, 13), (5, 7, 16), (3, 33, 5), (1, 1001, 130)])
def test_spikes_equal_the_naive_loop_bit_for_bit(dtype, n_levels, binary, batch, length, channels):
    logits, x = inputs(batch, length, channels, dtype, seed=length)
    expected = dsn_naive(logits, x, TAU, n_levels, binary)
    assert torch.equal(dsn_compiled(logits, x, TAU, n_levels, binary), expected)
    leaves = logits.clone().requires_grad_(), x.clone().requires_grad_()
    assert torch.equal(dsn_compiled(*leaves, TAU, n_levels, binary).detach(), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("n_levels", "binary"), OPTIONS)
def test_membranes_within_1e9_of_a_crossing_give_the_naive_spikes(dtype, n_levels, binary):
    logits, x = inputs(4, 33, 13, dtype, seed=1)
    x = near_crossings(logits, x, n_levels, seed=2)
    membrane = dsn_membrane_naive(logits, x, TAU)
    distance = (membrane - membrane.floor() - 0.5).abs()  # to the nearest crossing n - 1/2
    assert (distance < 1e-6).float().mean() > 0.2  # the placement worked at many steps
    assert torch.equal(dsn_compiled(logits, x, TAU, n_levels, binary), dsn_naive(logits, x, TAU, n_levels, binary))


def test_non_contiguous_inputs_give_the_same_spikes():
    logits, x = inputs(4, 40, 16, torch.float32, seed=3)
    strided = [t.transpose(0, 1).contiguous().transpose(0, 1) for t in (logits, x)]
    assert not strided[0].is_contiguous()
    assert torch.equal(dsn_compiled(*strided, TAU, 4, False), dsn_naive(logits, x, TAU, 4, False))


def gradients(fn, logits, x, dy, n_levels, binary):
    leaves = logits.clone().requires_grad_(), x.clone().requires_grad_()
    return torch.autograd.grad(fn(*leaves, TAU, n_levels, binary), leaves, dy)


@pytest.mark.parametrize(("n_levels", "binary"), OPTIONS)
@pytest.mark.parametrize("length", [1, 7, 33])
def test_gradients_equal_autograd_through_the_naive_loop(n_levels, binary, length):
    logits, x = inputs(3, length, 13, torch.float64, seed=4)
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = gradients(dsn_naive, logits, x, dy, n_levels, binary)
    got = gradients(dsn_compiled, logits, x, dy, n_levels, binary)
    for name, a, b in zip(("logits", "x"), got, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)


def test_the_dispatch_picks_the_compiled_loop_on_the_cpu_for_one_dtype(monkeypatch):
    chosen = []
    original = dispatch.select_backend
    monkeypatch.setattr(dispatch, "select_backend", lambda *a, **k: chosen.append(original(*a, **k)) or chosen[-1])
    logits, x = inputs(2, 9, 8, torch.float32)
    assert torch.equal(dsn(logits, x, TAU, 4, False), dsn_naive(logits, x, TAU, 4, False))
    dsn(logits.double(), x, TAU, 4, False)  # mixed dtypes: the PyTorch path
    assert chosen == ["compiled", "torch"]
    with pytest.raises(dispatch.CompiledUnavailable, match="differ in dtype"):
        dsn(logits.double(), x, TAU, 4, False, backend="compiled")


def test_one_and_two_threads_give_identical_results():
    logits, x = inputs(1, 200, 48, torch.float32, seed=6)  # B = 1: channel blocks split across threads
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            results.append((dsn_compiled(logits, x, TAU, 1, True), *gradients(dsn_compiled, logits, x, dy, 1, True)))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)
