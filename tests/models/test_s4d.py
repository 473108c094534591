"""S4D kernel and convolution against the recurrence they stand for; inits; bidirectional lags."""

import math

import pytest
import torch

from lra_snn.models.s4d import S4D, S4DKernel, fft_conv, s4d_eigenvalues


def _recurrent_kernel(kernel: S4DKernel, length: int) -> torch.Tensor:
    """Impulse response of the ZOH-discretised diagonal system, stepped in time (the definition)."""
    dt = kernel.log_dt.double().exp()[:, None]
    A = torch.complex(-kernel.log_neg_A_real.double().exp(), kernel.A_imag.double())
    A_bar = torch.exp(dt * A)
    B_bar = (A_bar - 1) / A
    C = torch.view_as_complex(kernel.C.double().contiguous())
    state = torch.zeros_like(A_bar)
    out = []
    for step in range(length):
        state = A_bar * state + B_bar * (1.0 if step == 0 else 0.0)
        out.append(2 * (C * state).sum(-1).real)
    return torch.stack(out, -1)


@pytest.mark.parametrize("init", ["lin", "inv", "legs"])
def test_kernel_matches_recurrence(init):
    torch.manual_seed(0)
    kernel = S4DKernel(channels=3, d_state=8, init=init)
    expected = _recurrent_kernel(kernel, 37)
    torch.testing.assert_close(kernel(37).double(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("length", [1, 7, 33])
def test_fft_conv_is_causal_convolution(length):
    torch.manual_seed(1)
    u, k = torch.randn(2, 3, length), torch.randn(3, length)
    direct = torch.stack([sum(k[:, j] * u[..., t - j] for j in range(t + 1)) for t in range(length)], -1)
    torch.testing.assert_close(fft_conv(u, k), direct, rtol=1e-4, atol=1e-5)


def test_bidirectional_adds_strictly_anticausal_part():
    torch.manual_seed(2)
    layer = S4D(d_model=2, d_state=4, bidirectional=True)
    length = 9
    u = torch.randn(1, length, 2)
    k_fwd, k_bwd = layer.kernel(length).chunk(2, 0)
    y = layer(u)
    for t in range(length):
        causal = sum(k_fwd[:, j] * u[0, t - j] for j in range(t + 1))
        anti = sum(k_bwd[:, s - t - 1] * u[0, s] for s in range(t + 1, length))
        torch.testing.assert_close(y[0, t], causal + anti + layer.D * u[0, t], rtol=1e-4, atol=1e-5)


def test_inits():
    lin, inv, legs = (s4d_eigenvalues(name, 4) for name in ("lin", "inv", "legs"))
    assert torch.allclose(lin.real, torch.full((4,), -0.5, dtype=torch.float64))
    assert torch.allclose(lin.imag, math.pi * torch.arange(4, dtype=torch.float64))
    assert torch.allclose(inv.imag, 8 / math.pi * (8 / (2 * torch.arange(4) + 1) - 1).double())
    assert (legs.real == -0.5).all() and (legs.imag > 0).all() and (legs.imag.diff() > 0).all()
    with pytest.raises(ValueError, match="unknown S4D init"):
        s4d_eigenvalues("hippo", 4)
    with pytest.raises(ValueError, match="d_state"):
        S4DKernel(2, d_state=3)
