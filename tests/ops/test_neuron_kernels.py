"""Fused neuron kernels under the Triton interpreter against their references (docs/kernels.md,
"Correctness without a GPU"): the decoupled-reset LIF (lra_snn/ops/lif), the DSN (lra_snn/ops/dsn)
and one refractory boundary-compression iteration (lra_snn/ops/refractory_iteration); forward
exactly as the time loops, gradients against the PyTorch paths (float64, where both sum the same terms)."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops.dsn import dsn
from lra_snn.ops.dsn.naive import dsn_membrane_naive, dsn_naive
from lra_snn.ops.leaky_integrate.naive import leaky_integrate_naive
from lra_snn.ops.lif import lif
from lra_snn.ops.lif.naive import lif_naive
from lra_snn.ops.refractory_iteration import refractory_iteration
from lra_snn.ops.refractory_iteration.naive import refractory_iteration_naive
from lra_snn.ops.refractory_iteration.torch import spike_trace
from lra_snn.ops.threshold_scan.naive import threshold_scan_naive

LENGTHS = [1, 7, 33]


def currents(batch: int, length: int, channels: int, seed: int, device="cpu", dtype=torch.float64) -> torch.Tensor:
    """Inputs that make a LIF (V_th = 1) fire on a fair share of steps."""
    g = torch.Generator().manual_seed(seed)
    return (0.4 + 0.8 * torch.randn(batch, length, channels, generator=g, dtype=torch.float64)).to(device, dtype)


def assert_written(*tensors: torch.Tensor) -> None:
    for t in tensors:
        assert not torch.isnan(t).any(), "the kernel left unwritten (NaN) elements"


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("surrogate", ["atan", "triangle", "rect"])
def test_fused_lif_matches_reference(length, surrogate, device):
    check_fused_lif(2, length, 19, surrogate, device)


@pytest.mark.parametrize(("beta", "v_th"), [(0.8, 0.6), (0.3, 1.3)])
def test_fused_lif_takes_its_decay_and_threshold_from_the_arguments(beta, v_th, device):
    spikes = check_fused_lif(2, 33, 19, "atan", device, beta=beta, v_th=v_th)
    # a fair share of steps fire, so a wrong threshold or decay would move some of them
    assert 0.1 < spikes.mean().item() < 0.9
    default_spikes, _ = lif_naive(currents(2, 33, 19, seed=33, device=device), 0.5, 1.0)
    assert not torch.equal(spikes, default_spikes)


def check_fused_lif(
    batch: int, length: int, channels: int, surrogate: str, device, beta: float = 0.5, v_th: float = 1.0
) -> torch.Tensor:
    """Spikes and counts exactly as the time loop, the gradient as the PyTorch path and the loop's (float64);
    returns the spikes."""
    x = currents(batch, length, channels, seed=length, device=device)
    dy = currents(batch, length, channels, seed=100 + length, device=device)
    results = {}
    for name, run in (
        ("triton", lambda t: lif(t, beta, v_th, surrogate, backend="triton")),
        ("torch", lambda t: lif(t, beta, v_th, surrogate, backend="torch")),
        ("naive", lambda t: lif_naive(t, beta, v_th, surrogate)),
    ):
        xt = x.clone().requires_grad_()
        spikes, count = run(xt)
        results[name] = (spikes.detach(), count, *torch.autograd.grad(spikes, xt, dy))
    spikes, count, dx = results["triton"]
    assert_written(spikes, count, dx)
    ref_spikes, ref_count, dx_naive = results["naive"]
    torch.testing.assert_close(spikes, ref_spikes, rtol=0, atol=0)
    torch.testing.assert_close(count, ref_count, rtol=0, atol=0)
    # surrogate at the margin, back through u' only
    torch.testing.assert_close(dx, results["torch"][2], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dx, dx_naive, rtol=1e-10, atol=1e-12)
    return spikes


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("binary", [False, True], ids=["integer", "binary"])
def test_fused_dsn_matches_reference(length, binary, device):
    check_fused_dsn(2, length, 19, binary, device)


def check_fused_dsn(batch: int, length: int, channels: int, binary: bool, device) -> None:
    """Spikes exactly as the time loop, gradients as the neuron's PyTorch path (float64)."""
    g = torch.Generator().manual_seed(length)
    logits = 2 * torch.randn(batch, length, channels, generator=g, dtype=torch.float64).to(device)
    x = 3 * currents(batch, length, channels, seed=length, device=device)
    dy = currents(batch, length, channels, seed=200 + length, device=device)
    leaves = [logits.clone().requires_grad_(), x.clone().requires_grad_()]
    spikes = dsn(*leaves, 0.25, 4, binary, backend="triton")
    grads = torch.autograd.grad(spikes, leaves, dy)
    assert_written(spikes, *grads)
    torch.testing.assert_close(spikes, dsn_naive(logits, x, 0.25, 4, binary), rtol=0, atol=0)
    ref_leaves = [logits.clone().requires_grad_(), x.clone().requires_grad_()]
    ref_grads = torch.autograd.grad(dsn(*ref_leaves, 0.25, 4, binary, backend="torch"), ref_leaves, dy)
    for name, got, expected in zip(("dlogits", "dx"), grads, ref_grads):
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-11, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("length", LENGTHS)
def test_refractory_iteration_matches_references(length, device):
    check_refractory_iteration(2, length, 19, device)


def check_refractory_iteration(batch: int, length: int, channels: int, device) -> None:
    """Next iterate and traces as the time loop and as the PyTorch path's leaky integration (float64)."""
    g = torch.Generator().manual_seed(length)
    excess = currents(batch, length, channels, seed=length, device=device) - 0.5
    spikes = (torch.rand(batch, length, channels, generator=g) < 0.4).double().to(device)
    v_th = (0.5 + torch.rand(channels, generator=g, dtype=torch.float64)).to(device)
    rho = (0.2 + torch.rand(channels, generator=g, dtype=torch.float64)).to(device)
    got = refractory_iteration(excess, spikes, v_th, rho, 0.5, 0.3, backend="triton")
    assert_written(*got)
    expected = refractory_iteration_naive(excess, spikes, v_th, rho, 0.5, 0.3)
    for name, a, b in zip(("update", "reset", "refractory"), got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=lambda m, n=name: f"{n}: {m}")
    # and the traces the PyTorch path builds by leaky integration
    torch.testing.assert_close(got[1], 0.5 * spike_trace(spikes, 0.5), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got[2], spike_trace(spikes, 0.3), rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_fused_kernels_on_a_long_odd_sequence(device):
    # 1,001 steps: 63 chunks under the interpreter, each carrying the state of the one before
    check_fused_lif(1, 1001, 3, "atan", device)
    check_fused_dsn(1, 1001, 3, False, device)
    check_refractory_iteration(1, 1001, 3, device)


@pytest.mark.gpu
def test_fused_kernels_forward_and_backward_full_size_float64_on_gpu(device):
    # the interpreter checks above, repeated at B=2, L=16,385, D=256 with the GPU's compiled kernels
    check_fused_lif(2, 16385, 256, "atan", device)
    check_fused_dsn(2, 16385, 256, False, device)
    check_refractory_iteration(2, 16385, 256, device)


@pytest.mark.gpu
def test_fused_kernels_full_size_on_gpu(device):
    # float32 at B=8, L=16,384, D=256: spikes may differ only where a margin sits within rounding of 0
    x = currents(8, 16384, 256, seed=0, device=device, dtype=torch.float32)
    spikes, count = lif(x, 0.5, 1.0, backend="triton")
    ref_spikes, _ = lif_naive(x.double(), 0.5, 1.0)
    excess = leaky_integrate_naive(x.double(), 0.5) - 1.0
    margin = excess - threshold_scan_naive(excess, 1.0, 0.5)[1]
    mismatch = (spikes.double() != ref_spikes) & (margin.abs() > 1e-4)
    assert not mismatch.any(), f"{int(mismatch.sum())} LIF spikes differ away from the threshold"
    torch.testing.assert_close(count.sum(), spikes.sum(), rtol=0, atol=0)
    logits = torch.randn_like(x)
    dsn_spikes = dsn(logits, 3 * x, 0.25, 4, False, backend="triton")
    h = dsn_membrane_naive(logits.double(), 3 * x.double(), 0.25)
    near_half = ((h + 0.5) - torch.floor(h + 0.5)).abs() < 1e-4
    mismatch = (dsn_spikes.double() != torch.floor(h + 0.5).clamp(0, 4)) & ~near_half
    assert not mismatch.any(), f"{int(mismatch.sum())} DSN spikes differ away from a rounding boundary"
