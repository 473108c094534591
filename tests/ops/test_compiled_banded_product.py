"""The compiled CPU loop of the banded product (lra_snn/ops/banded_product/compiled.py) against the naive
time loop: ``H`` to rounding (the naive loop's ``einsum`` sums in the matrix library's order), gradients
in x, the window weights and the bias as autograd through the naive loop, windows shorter and longer
than the sequence, the dispatch's choice, the thread count."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops import dispatch
from lra_snn.ops.banded_product import banded_product
from lra_snn.ops.banded_product.compiled import banded_product_compiled
from lra_snn.ops.banded_product.naive import banded_product_naive


def inputs(batch: int, length: int, channels: int, taps: int, dtype: torch.dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, channels, generator=g, dtype=torch.float64)
    weight = torch.randn(taps, generator=g, dtype=torch.float64)
    bias = torch.randn((), generator=g, dtype=torch.float64)
    return x.to(dtype), weight.to(dtype), bias.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("taps", [1, 4, 6, 40])  # 6: four taps at once and two more
@pytest.mark.parametrize(("batch", "length", "channels"), [(1, 1, 13), (5, 7, 16), (3, 33, 5), (1, 1001, 130)])
def test_the_hidden_state_equals_the_naive_loop_to_rounding(dtype, taps, batch, length, channels):
    x, weight, bias = inputs(batch, length, channels, taps, dtype, seed=length + taps)
    expected = banded_product_naive(x.double(), weight.double(), bias.double())
    got = banded_product_compiled(x, weight, bias)
    assert got.dtype == dtype
    tolerance = 1e-5 if dtype == torch.float32 else 1e-13
    torch.testing.assert_close(got.double(), expected, rtol=tolerance, atol=tolerance * taps)


def test_a_non_contiguous_input_gives_the_same_hidden_state():
    x, weight, bias = inputs(4, 40, 16, 4, torch.float32, seed=1)
    strided = x.transpose(0, 1).contiguous().transpose(0, 1)
    assert not strided.is_contiguous()
    assert torch.equal(banded_product_compiled(strided, weight, bias), banded_product_compiled(x, weight, bias))


def gradients(fn, x, weight, bias, dh):
    leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
    return torch.autograd.grad(fn(*leaves), leaves, dh)


@pytest.mark.parametrize("taps", [1, 4, 5, 40])  # 5: taps in pairs and one more (odd k > 1)
@pytest.mark.parametrize("length", [1, 7, 65])
def test_gradients_equal_autograd_through_the_naive_loop(taps, length):
    x, weight, bias = inputs(3, length, 13, taps, torch.float64, seed=2)
    dh = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    expected = gradients(banded_product_naive, x, weight, bias, dh)
    got = gradients(banded_product_compiled, x, weight, bias, dh)
    for name, a, b in zip(("x", "weight", "bias"), got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)


def test_the_dispatch_picks_the_compiled_loop_on_the_cpu(monkeypatch):
    chosen = []
    original = dispatch.select_backend
    monkeypatch.setattr(dispatch, "select_backend", lambda *a, **k: chosen.append(original(*a, **k)) or chosen[-1])
    x, weight, bias = inputs(2, 9, 8, 4, torch.float32)
    torch.testing.assert_close(banded_product(x, weight, bias), banded_product_naive(x, weight, bias))
    assert chosen == ["compiled"]
    with pytest.raises(ValueError, match="one dtype"):
        banded_product(x, weight.double(), bias)


@pytest.mark.parametrize(
    "shapes", [((2, 0, 3), (4,), ()), ((2, 5), (4,), ()), ((2, 5, 3), (0,), ()), ((2, 5, 3), (4,), (1,))]
)
def test_rejects_bad_shapes(shapes):
    with pytest.raises(ValueError, match="banded_product takes"):
        banded_product(*(torch.zeros(shape) for shape in shapes))


def test_one_and_two_threads_give_identical_results():
    x, weight, bias = inputs(1, 200, 48, 4, torch.float32, seed=4)  # B = 1: channel blocks split across threads
    dh = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            results.append(
                (banded_product_compiled(x, weight, bias), *gradients(banded_product_compiled, x, weight, bias, dh))
            )
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)
