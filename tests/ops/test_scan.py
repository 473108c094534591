"""Scans under the neurons, each against a plain loop of its definition: the parallel first-order
scan (lra_snn/ops/linear_scan), the chunked leaky integration (lra_snn/ops/leaky_integrate), spike
traces (the refractory iteration's PyTorch path) and the threshold scan's offsets and its three host
loops, compiled, NumPy and torch (lra_snn/ops/threshold_scan)."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops.leaky_integrate import leaky_integrate
from lra_snn.ops.linear_scan import linear_scan
from lra_snn.ops.linear_scan.naive import linear_scan_naive
from lra_snn.ops.refractory_iteration.torch import spike_trace
from lra_snn.ops.threshold_scan import threshold_scan
from lra_snn.ops.threshold_scan import torch as threshold_torch
from lra_snn.ops.threshold_scan.offsets_loop import offsets_kernel
from lra_snn.ops.threshold_scan.torch import host_offsets

needs_numba = pytest.mark.skipif(offsets_kernel() is None, reason="numba is not installed: no compiled loop")

LENGTHS = [1, 7, 33, 1000]


def random(shape, seed, low=None, high=None, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    if low is None:
        return torch.randn(shape, generator=generator, dtype=dtype)
    return torch.rand(shape, generator=generator, dtype=dtype) * (high - low) + low


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("decay_kind", ["per_channel", "per_step"])
def test_linear_scan_matches_the_loop(length, decay_kind):
    b = random((3, length, 4), seed=length)
    a = random((4,) if decay_kind == "per_channel" else (3, length, 4), seed=1, low=-1.0, high=1.0)
    h0 = random((3, 4), seed=2)
    torch.testing.assert_close(linear_scan(a, b), linear_scan_naive(a, b), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(linear_scan(a, b, h0), linear_scan_naive(a, b, h0), rtol=1e-12, atol=1e-12)


def test_linear_scan_stays_exact_where_decay_products_underflow():
    b = random((2, 1100, 3), seed=3)
    a = torch.full((3,), 0.5, dtype=torch.float64)
    h = linear_scan(a, b)
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h, linear_scan_naive(a, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("decay_kind", ["per_channel", "per_step"])
def test_linear_scan_passes_gradcheck(decay_kind):
    b = random((2, 9, 3), seed=4).requires_grad_()
    a = random((3,) if decay_kind == "per_channel" else (2, 9, 3), seed=5, low=-0.9, high=0.9).requires_grad_()
    h0 = random((2, 3), seed=6).requires_grad_()
    assert torch.autograd.gradcheck(linear_scan, (a, b, h0))
    assert torch.autograd.gradcheck(lambda a, b: linear_scan(a, b), (a, b))


@pytest.mark.parametrize("length", [16, 17, 255, 257, 1001, 4099])
@pytest.mark.parametrize("decay_kind", ["per_channel", "per_step", "complex"])
def test_chunked_scan_matches_the_loop_forward_and_backward(length, decay_kind):
    """Chunks of about sqrt(L) steps (the last one padded), the carry across chunk ends (itself
    chunked at the longest lengths) and the reverse scan of the backward, against the time loop."""
    b = random((2, length, 3), seed=length)
    a = random((3,) if decay_kind == "per_channel" else (2, length, 3), seed=17, low=-1.0, high=1.0)
    h0 = random((2, 3), seed=18)
    if decay_kind == "complex":
        b = torch.complex(b, random((2, length, 3), seed=19))
        a = torch.polar(a.abs(), random((2, length, 3), seed=20, low=-3.0, high=3.0))
        h0 = torch.complex(h0, h0.flip(0))
    upstream = torch.randn_like(b)
    results = []
    for scan in (linear_scan, linear_scan_naive):
        leaves = [t.clone().requires_grad_() for t in (a, b, h0)]
        h = scan(*leaves)
        (h * upstream.conj()).real.sum().backward()
        results.append([h, *(leaf.grad for leaf in leaves)])
    for chunked, loop in zip(*results):
        torch.testing.assert_close(chunked, loop, rtol=1e-11, atol=1e-11)


def test_chunked_scan_passes_gradcheck_across_chunks():
    b = random((2, 40, 2), seed=21).requires_grad_()  # chunks of 16: three, the last one padded
    a = random((2, 40, 2), seed=22, low=-0.9, high=0.9).requires_grad_()
    decay = random((2,), seed=23, low=-0.9, high=0.9).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: linear_scan(a, b), (a, b))
    assert torch.autograd.gradcheck(lambda decay, b: linear_scan(decay, b), (decay, b))


def test_linear_scan_rejects_inputs_without_a_time_axis():
    with pytest.raises(ValueError, match="batch, length"):
        linear_scan(torch.ones(3), torch.ones(5))


@pytest.mark.parametrize("length", [*LENGTHS, 64, 65])
@pytest.mark.parametrize("decay", [0.0, 0.5, 0.99, 1.0])
def test_leaky_integrate_matches_the_loop(length, decay):
    x = random((2, length, 3), seed=length)
    expected = linear_scan_naive(torch.tensor(decay, dtype=torch.float64), x)
    torch.testing.assert_close(leaky_integrate(x, decay), expected, rtol=1e-11, atol=1e-11)


def test_leaky_integrate_in_float32_stays_close_to_float64():
    x = random((2, 1000, 3), seed=7)
    exact = leaky_integrate(x, 0.9)
    torch.testing.assert_close(leaky_integrate(x.float(), 0.9).double(), exact, rtol=0, atol=1e-5)


def test_leaky_integrate_passes_gradcheck():
    x = random((2, 37, 2), seed=8).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: leaky_integrate(x, 0.7, chunk=8), (x,))


@pytest.mark.parametrize("decay", [-0.1, 1.5])
def test_leaky_integrate_rejects_decays_outside_the_unit_interval(decay):
    with pytest.raises(ValueError, match="decay"):
        leaky_integrate(torch.ones(1, 4, 1), decay)


def test_spike_trace_is_the_decayed_count_of_earlier_spikes():
    spikes = (random((2, 40, 3), seed=9, low=0.0, high=1.0) < 0.3).double()
    steps = torch.arange(40, dtype=torch.float64)
    lag = steps.view(-1, 1) - 1 - steps.view(1, -1)  # t - 1 - i
    weights = torch.where(lag >= 0, 0.6 ** lag.clamp_min(0), torch.zeros(()))
    expected = torch.einsum("ti,bic->btc", weights, spikes)
    torch.testing.assert_close(spike_trace(spikes, 0.6), expected, rtol=1e-12, atol=1e-12)


def offsets_by_definition(excess, v_th, decay):
    """``b_t = V_th * sum_{i<t} decay^(t-i) s_i`` with ``s_i = [excess_i >= b_i]``, a plain loop."""
    offsets, fired = [], []
    for t in range(excess.shape[1]):
        b_t = sum(v_th * decay ** (t - i) * fired[i] for i in range(t)) if t else torch.zeros_like(excess[:, 0])
        offsets.append(b_t)
        fired.append((excess[:, t] >= b_t).to(excess.dtype))
    return torch.stack(offsets, 1)


@pytest.mark.parametrize("loop", [pytest.param("compiled", marks=needs_numba), "numpy", "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_threshold_scan_follows_the_closed_form(loop, dtype):
    excess = random((3, 60, 4), seed=10, dtype=dtype)
    v_th = random((4,), seed=11, low=0.5, high=1.5, dtype=dtype)
    decay = random((4,), seed=12, low=-0.5, high=0.95, dtype=dtype)
    offsets = host_offsets(excess, v_th, decay, loop=loop)
    expected = offsets_by_definition(excess.double(), v_th.double(), decay.double())
    assert offsets.dtype == dtype
    torch.testing.assert_close(offsets.double(), expected, rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12)
    assert ((excess - offsets) >= 0).any() and (offsets > 0).any()


@pytest.mark.parametrize("length", [1, 7, 1000])
def test_threshold_scan_host_loops_agree_exactly(length):
    excess = random((2, length, 5), seed=13) + 0.5
    v_th, decay = torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)
    numpy_offsets = host_offsets(excess, v_th, decay, loop="numpy")
    torch_offsets = host_offsets(excess, v_th, decay, loop="torch")
    assert torch.equal(numpy_offsets, torch_offsets)
    assert torch.equal(threshold_scan(excess, 1.0, 0.5, backend="torch")[1], numpy_offsets)  # the PyTorch path
    assert torch.equal(threshold_scan(excess, 1.0, 0.5)[1], numpy_offsets)  # the CPU default, the op's compiled loop
    assert torch.equal(numpy_offsets[:, 0], torch.zeros(2, 5, dtype=torch.float64))


def near_threshold_excess(shape, seed, dtype):
    """Excess values that land on or next to the offsets: a coarse grid of multiples of 1/8 (the
    offsets of V_th = 1, decay = 1/2 are such multiples) plus a one-ulp jitter on a third of them."""
    grid = torch.randint(-8, 17, shape, generator=torch.Generator().manual_seed(seed)).to(dtype) / 8
    jitter = random(shape, seed + 1, low=0.0, high=1.0) < 1 / 3
    return torch.where(jitter.to(torch.bool), torch.nextafter(grid, torch.full_like(grid, 2.0)), grid)


@needs_numba
@pytest.mark.parametrize("length", [1, 2, 7, 33, 1001])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("inputs", ["random", "near_threshold"])
def test_compiled_loop_gives_the_numpy_loops_offsets_bit_for_bit(length, dtype, inputs):
    shape = (3, length, 7)
    if inputs == "random":
        excess = random(shape, seed=length, dtype=dtype) * 1.5
        v_th = random((7,), seed=14, low=0.3, high=1.7, dtype=dtype)
        decay = random((7,), seed=15, low=0.05, high=0.97, dtype=dtype)
    else:
        excess = near_threshold_excess(shape, seed=length, dtype=dtype)
        v_th, decay = torch.tensor(1.0, dtype=dtype), torch.tensor(0.5, dtype=dtype)
    numpy_offsets = host_offsets(excess, v_th, decay, loop="numpy")
    compiled = host_offsets(excess, v_th, decay, loop="compiled")
    assert compiled.dtype == dtype and torch.equal(compiled, numpy_offsets)
    assert torch.equal(host_offsets(excess.transpose(0, 1).contiguous().transpose(0, 1), v_th, decay), compiled)
    if inputs == "near_threshold" and length > 7:
        assert ((excess - numpy_offsets) == 0).any()  # ties (a spike exactly at the threshold) are covered
    for backend in ("torch", "compiled"):  # the PyTorch path runs this loop; the op's compiled loop matches it
        spikes, offsets = threshold_scan(excess, v_th, decay, backend=backend)
        assert torch.equal(offsets, compiled) and torch.equal(spikes, (excess >= compiled).to(dtype))


def test_without_numba_the_numpy_loop_runs(monkeypatch):
    monkeypatch.setattr(threshold_torch, "offsets_kernel", lambda: None)
    excess = random((2, 33, 3), seed=16, dtype=torch.float32)
    v_th, decay = torch.tensor(1.0), torch.tensor(0.7)
    calls = []
    numpy_loop = threshold_torch._scan_offsets_numpy
    monkeypatch.setattr(threshold_torch, "_scan_offsets_numpy", lambda *args: calls.append(1) or numpy_loop(*args))
    offsets = host_offsets(excess, v_th, decay)
    assert calls == [1] and torch.equal(offsets, host_offsets(excess, v_th, decay, loop="torch"))
    with pytest.raises(ValueError, match="needs numba"):
        host_offsets(excess, v_th, decay, loop="compiled")


def test_threshold_scan_without_decay_powers_would_differ():
    """The beta powers matter (docs/neurons.md, section 1): two spikes two steps apart raise the
    offset by V_th*(beta^2 + beta), not 2*V_th*beta."""
    excess = torch.tensor([[[5.0], [5.0], [0.0], [-10.0]]], dtype=torch.float64)
    spikes, offsets = threshold_scan(excess, 1.0, 0.5)
    assert offsets.flatten().tolist() == [0.0, 0.5, 0.75, 0.375]
    assert spikes.flatten().tolist() == [1.0, 1.0, 0.0, 0.0]


def test_threshold_scan_rejects_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        threshold_scan(torch.zeros(1, 3, 2), 1.0, 0.5, backend="cuda")
    for loop in ("numpy", "compiled"):
        with pytest.raises(ValueError, match="float32/float64 CPU"):
            host_offsets(torch.zeros(1, 3, 2, dtype=torch.bfloat16), torch.tensor(1.0), torch.tensor(0.5), loop=loop)
    with pytest.raises(ValueError, match="unknown host loop"):
        host_offsets(torch.zeros(1, 3, 2), torch.tensor(1.0), torch.tensor(0.5), loop="fortran")
    with pytest.raises(ValueError, match="surrogate"):
        threshold_scan(torch.zeros(1, 3, 2), 1.0, 0.5, surrogate="sigmoid")
    with pytest.raises(ValueError, match="one entry per channel"):
        threshold_scan(torch.zeros(1, 3, 2), torch.ones(3), 0.5)
    with pytest.raises(ValueError, match="batch, length, channels"):
        threshold_scan(torch.zeros(3, 2), 1.0, 0.5)


def test_the_compiled_loops_cache_in_a_folder_named_by_the_ops_sources(tmp_path, monkeypatch):
    """A loop cached against an older version of a function it calls is never reused: any change to a
    source of the ops names another cache folder."""
    from lra_snn.ops.host_compile import cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "ops" / "surrogate").mkdir(parents=True)
    (tmp_path / "ops" / "loop.py").write_text("def loop(): pass\n")
    (tmp_path / "ops" / "surrogate" / "compiled.py").write_text("def slope(v): return 1\n")
    first = cache_dir.__wrapped__(tmp_path / "ops")
    assert first.parent == tmp_path / "cache" / "lra_snn" / "numba" and len(first.name) == 16
    assert cache_dir.__wrapped__(tmp_path / "ops") == first
    (tmp_path / "ops" / "surrogate" / "compiled.py").write_text("def slope(v): return 2\n")
    assert cache_dir.__wrapped__(tmp_path / "ops") != first
