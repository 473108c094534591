"""S4D kernel and convolution against the recurrence and the direct Vandermonde formula they stand
for (values and gradients, float64 and float32, causal and bidirectional); inits; bidirectional lags."""

import copy
import math

import pytest
import torch

from lra_snn.models.s4d import S4D, S4DKernel, block_size, fft_conv, s4d_eigenvalues


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


def _direct_kernel(kernel: S4DKernel, length: int) -> torch.Tensor:
    """The S4D Vandermonde kernel with the whole (H, N/2, L) Vandermonde matrix, in float64:
    ``K[l] = 2 Re( sum_n C_n (exp(dt A_n) - 1) / A_n exp(l dt A_n) )``."""
    dt = kernel.log_dt.double().exp()[:, None]
    A = torch.complex(-kernel.log_neg_A_real.double().exp(), kernel.A_imag.double())
    C = torch.view_as_complex(kernel.C.double().contiguous()) * (torch.exp(dt * A) - 1) / A
    vandermonde = torch.exp(dt[..., None] * A[..., None] * torch.arange(length, dtype=torch.float64))
    return 2 * torch.einsum("hn,hnl->hl", C, vandermonde).real


def _direct_conv_kernel(layer: S4D, length: int) -> torch.Tensor:
    """The layer's convolution kernel from ``_direct_kernel``: lags 0..L-1, then for the bidirectional
    layer the anti-causal lags -L..-1 at positions L..2L-1 of the size-2L circular convolution."""
    k = _direct_kernel(layer.kernel, length)
    if not layer.bidirectional:
        return k
    forward_k, backward_k = k.chunk(2, dim=0)
    return torch.cat([forward_k, backward_k.flip(-1)], -1)


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return ((value.double() - reference).norm() / reference.norm()).item()


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("length", [1, 2, 3, 17, 1001, 4096])
def test_kernel_matches_direct_formula_float64(bidirectional, length):
    torch.manual_seed(3)
    layer = S4D(d_model=4, d_state=64, bidirectional=bidirectional).double()
    k = layer.conv_kernel(length)
    assert k.dtype == torch.float64 and k.shape == (4, (2 if bidirectional else 1) * length)
    expected = _direct_conv_kernel(layer, length)
    torch.testing.assert_close(k, expected, rtol=0, atol=1e-10 * expected.abs().max().item())


@pytest.mark.parametrize("bidirectional", [False, True])
def test_kernel_float32_relative_error_at_16k(bidirectional):
    """float32 (complex64 inside) against the float64 formula; the error (2-6e-6 over seeds and inits)
    is the float32 rounding of dt A and of the phases l dt A, the same as the direct float32 formula."""
    torch.manual_seed(4)
    layer = S4D(d_model=4, d_state=64, bidirectional=bidirectional)
    with torch.no_grad():
        k = layer.conv_kernel(16384)
        expected = _direct_conv_kernel(layer, 16384)
    assert k.dtype == torch.float32
    assert _relative_error(k, expected) <= 1e-5


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 5e-4)])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_match_direct_formula_at_odd_length(dtype, tolerance, bidirectional):
    """Gradients of every kernel parameter at L = 1001 (not a multiple of the block size) against
    autograd through the float64 direct formula; float32 log_dt gradients sum terms weighted by l and
    land 4e-5 to 1.1e-4 off, as the direct float32 formula's do (4e-5 to 5e-5)."""
    torch.manual_seed(5)
    length = 1001
    layer = S4D(d_model=4, d_state=64, bidirectional=bidirectional).to(dtype)
    reference = copy.deepcopy(layer).double()
    weights = torch.randn(4, (2 if bidirectional else 1) * length, dtype=torch.float64)
    (layer.conv_kernel(length) * weights.to(dtype)).sum().backward()
    (_direct_conv_kernel(reference, length) * weights).sum().backward()
    for name in ("log_dt", "log_neg_A_real", "A_imag", "C"):
        ours, expected = getattr(layer.kernel, name).grad, getattr(reference.kernel, name).grad
        assert ours.dtype == dtype
        assert _relative_error(ours, expected) <= tolerance, name


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("length", [1, 5, 1000, 1001, 4096])
def test_kernel_at_length_is_prefix_of_kernel_at_double_length(dtype, tolerance, length):
    torch.manual_seed(6)
    kernel = S4DKernel(channels=4, d_state=64).to(dtype)
    with torch.no_grad():
        short, long = kernel(length), kernel(2 * length)
    torch.testing.assert_close(short, long[:, :length], rtol=0, atol=tolerance * long.abs().max().item())


@pytest.mark.parametrize(
    "length, block", [(1, 1), (2, 2), (5, 4), (1000, 32), (1024, 32), (1025, 64), (4096, 64), (16384, 128)]
)
def test_block_size_is_smallest_power_of_two_at_least_sqrt_length(length, block):
    assert block_size(length) == block and block * block >= length > (block // 2) ** 2


def test_kernel_stays_float32_under_autocast():
    torch.manual_seed(7)
    kernel = S4DKernel(channels=3, d_state=16)
    with torch.no_grad():
        plain = kernel(300)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = kernel(300)
    assert autocast.dtype == torch.float32
    torch.testing.assert_close(autocast, plain, rtol=0, atol=0)
