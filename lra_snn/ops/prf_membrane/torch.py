"""PyTorch path of the PRF membrane (arXiv 2410.03530; docs/neurons.md, section 2): since x is real,
``Re z`` is the causal convolution of x with ``K[t] = Delta exp(-Delta t / tau) cos(Delta theta t)``,
computed by FFT (zero-padded to 2L, no wrap-around); gradients reach ``log_Delta`` and ``theta``
through K."""

from __future__ import annotations

import torch
from torch import Tensor


def prf_kernel(log_delta: Tensor, theta: Tensor, tau: float, length: int) -> Tensor:
    """Real PRF kernel ``K[d, t] = Delta_d exp(-Delta_d t / tau) cos(Delta_d theta_d t)``, (D, length)."""
    delta = log_delta.exp().unsqueeze(-1)
    t = torch.arange(length, dtype=log_delta.dtype, device=log_delta.device)
    return delta * torch.exp(-delta * t / tau) * torch.cos(delta * theta.unsqueeze(-1) * t)


class _CausalFFTConv(torch.autograd.Function):
    """Causal per-channel convolution by real FFT of length 2L, with an explicit backward.

    Backward (correlations, also by FFT): ``dx_j = sum_{t>=j} K[t-j] g_t`` and
    ``dK[tau] = sum_{b,t} g_t x_{t-tau}``; the spectra from the forward are reused, so the
    backward costs one forward FFT and two inverse ones.
    """

    @staticmethod
    def forward(ctx, x: Tensor, kernel: Tensor) -> Tensor:
        length = x.shape[1]
        n = 2 * length
        x_spectrum = torch.fft.rfft(x.transpose(1, 2), n=n)
        kernel_spectrum = torch.fft.rfft(kernel, n=n)
        ctx.save_for_backward(x_spectrum, kernel_spectrum)
        return torch.fft.irfft(x_spectrum * kernel_spectrum, n=n)[..., :length].transpose(1, 2)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x_spectrum, kernel_spectrum = ctx.saved_tensors
        length = grad.shape[1]
        n = 2 * length
        grad_spectrum = torch.fft.rfft(grad.transpose(1, 2), n=n)
        grad_x = grad_kernel = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.fft.irfft(grad_spectrum * kernel_spectrum.conj(), n=n)[..., :length].transpose(1, 2)
        if ctx.needs_input_grad[1]:
            correlation = (grad_spectrum * x_spectrum.conj()).sum(0)
            grad_kernel = torch.fft.irfft(correlation, n=n)[..., :length]
        return grad_x, grad_kernel


def causal_fft_conv(x: Tensor, kernel: Tensor) -> Tensor:
    """``y_t = sum_{j<=t} K[t-j] x_j`` per channel: x (B, L, D), kernel (D, L) -> y (B, L, D).

    By real FFT of length 2L (zero padding, so the circular convolution does not wrap);
    differentiable in x and the kernel.
    """
    if x.dim() != 3 or kernel.shape != (x.shape[2], x.shape[1]):
        raise ValueError(
            f"causal_fft_conv expects x (B, L, D) and kernel (D, L), got {tuple(x.shape)} and {tuple(kernel.shape)}"
        )
    return _CausalFFTConv.apply(x, kernel)


def prf_membrane_torch(x: Tensor, log_delta: Tensor, theta: Tensor, tau: float) -> Tensor:
    """``Re z`` (B, L, D) of real inputs ``x`` (B, L, D), differentiable in x, log_Delta and theta."""
    return causal_fft_conv(x, prf_kernel(log_delta, theta, tau, x.shape[1]))
