"""The threshold scan kernel (lra_snn/ops/threshold_scan) under the Triton interpreter against the
time-loop reference and the host loop of its PyTorch path: scalar and per-channel threshold and
decay, odd lengths, float32/float64, NaN-poisoned outputs; full size on a GPU."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops.dispatch import TritonUnavailable
from lra_snn.ops.threshold_scan import threshold_scan
from lra_snn.ops.threshold_scan.naive import threshold_scan_naive
from lra_snn.ops.threshold_scan.torch import host_offsets
from lra_snn.ops.threshold_scan.triton import threshold_scan_triton


def excess_of(batch: int, length: int, channels: int, seed: int, device, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (0.3 + torch.randn(batch, length, channels, generator=g, dtype=torch.float64)).to(device, dtype)


@pytest.mark.parametrize("length", [1, 7, 33, pytest.param(1001, marks=pytest.mark.slow)])
@pytest.mark.parametrize("per_channel", [False, True], ids=["scalar", "per_channel"])
def test_kernel_matches_the_time_loop(length, per_channel, device):
    excess = excess_of(2, length, 19, seed=length, device=device)
    g = torch.Generator().manual_seed(100 + length)
    v_th = (0.5 + torch.rand(19, generator=g, dtype=torch.float64)).to(device) if per_channel else 1.0
    decay = (torch.rand(19, generator=g, dtype=torch.float64) * 0.9).to(device) if per_channel else 0.5
    spikes, got = threshold_scan(excess, v_th, decay, backend="triton")
    assert not torch.isnan(got).any(), "the kernel left unwritten (NaN) elements"
    expected_spikes, expected = threshold_scan_naive(excess, v_th, decay)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(spikes, expected_spikes, rtol=0, atol=0)
    if device.type == "cpu":  # the host loop the PyTorch path runs
        v_th_t, decay_t = (torch.as_tensor(v, dtype=torch.float64, device=device) for v in (v_th, decay))
        torch.testing.assert_close(got, host_offsets(excess, v_th_t, decay_t, loop="numpy"), rtol=1e-12, atol=1e-12)
    if length > 1:
        assert (got > 0).any() and ((excess - got) >= 0).any(), "inputs must make the neuron fire on some steps"


def test_float32_kernel_keeps_the_input_dtype(device):
    excess = excess_of(1, 40, 5, seed=3, device=device, dtype=torch.float32)
    spikes, got = threshold_scan_triton(excess, torch.ones(5, device=device), torch.full((5,), 0.5, device=device))
    assert got.dtype == spikes.dtype == torch.float32
    expected = threshold_scan_naive(excess.double(), 1.0, 0.5)[1]
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-6)


def test_dispatch_explains_and_is_never_automatic_on_cpu(monkeypatch, chosen_backends):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(
        TritonUnavailable, match="backend='triton' was forced but cannot run: threshold_scan: tensors are on cpu"
    ):
        threshold_scan(torch.zeros(1, 3, 2), 1.0, 0.5, backend="triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    threshold_scan(torch.zeros(1, 3, 2), 1.0, 0.5)  # not the interpreter: the compiled loop
    threshold_scan(torch.zeros(1, 3, 2).half(), 1.0, 0.5)  # float16, which the compiled loop does not take: PyTorch
    assert chosen_backends == [("threshold_scan", "compiled"), ("threshold_scan", "torch")]
    with pytest.raises(ValueError, match="batch, length, channels"):
        threshold_scan(torch.zeros(3, 2), 1.0, 0.5, backend="triton")


@pytest.mark.gpu
def test_full_size_on_gpu(device):
    excess = excess_of(2, 16385, 256, seed=0, device=device)
    decay = torch.linspace(0.1, 0.95, 256, dtype=torch.float64, device=device)
    spikes, got = threshold_scan(excess, 1.0, decay, backend="triton")
    expected_spikes, expected = threshold_scan(excess, 1.0, decay, backend="torch")
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(spikes, expected_spikes, rtol=0, atol=0)
