"""S4D: the diagonal state-space layer (Gu et al. 2022, "On the Parameterization and
Initialization of Diagonal State Space Models"; neurons.md section 6).

Kernel ``K[l] = 2 Re( sum_n C_n B_n (exp(dt A_n) - 1) / A_n * exp(dt A_n)^l )`` (zero-order hold),
computed by a Vandermonde product, applied by FFT convolution with n = 2L (no wrap-around);
``y = K * u + D u``. The bidirectional variant adds a strictly anti-causal kernel.
A, B-free C, and dt are trainable and tagged "dynamics" (lr 1e-3, weight decay 0).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lra_snn.training.params import tag

S4D_INITS = ("lin", "inv", "legs")


def s4d_eigenvalues(init: str, n_modes: int) -> Tensor:
    """Complex diagonal A (n_modes,) for the S4D-Lin, S4D-Inv or S4D-LegS initialisation."""
    n = torch.arange(n_modes, dtype=torch.float64)
    if init == "lin":
        return torch.complex(torch.full_like(n, -0.5), math.pi * n)
    if init == "inv":
        state = 2 * n_modes
        return torch.complex(torch.full_like(n, -0.5), state / math.pi * (state / (2 * n + 1) - 1))
    if init == "legs":
        return _legs_normal_eigenvalues(2 * n_modes)[:n_modes]
    raise ValueError(f"unknown S4D init {init!r}; choose one of {S4D_INITS}")


def _legs_normal_eigenvalues(state: int) -> Tensor:
    """Eigenvalues of the normal part of HiPPO-LegS (A + P P^T), one of each conjugate pair."""
    q = torch.sqrt(1 + 2 * torch.arange(state, dtype=torch.float64))
    legs = -(torch.tril(q[:, None] * q[None, :]) - torch.diag(torch.arange(state, dtype=torch.float64)))
    normal = legs + 0.5 * q[:, None] * q[None, :]
    # normal = -1/2 I + skew-symmetric part: diagonalise the skew part with eigh on i*S.
    skew = normal + 0.5 * torch.eye(state, dtype=torch.float64)
    imag = torch.linalg.eigvalsh(skew * -1j)  # real, in +- pairs
    imag = imag.sort(descending=True).values[: state // 2].flip(0)
    return torch.complex(torch.full_like(imag, -0.5), imag)


class S4DKernel(nn.Module):
    """Generates the (channels, L) convolution kernel of ``channels`` independent S4D systems."""

    def __init__(self, channels: int, d_state: int = 64, init: str = "inv",
                 dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        if d_state < 2 or d_state % 2:
            raise ValueError(f"d_state must be an even number >= 2 (N/2 complex modes), got {d_state}")
        n_modes = d_state // 2
        log_dt = torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        A = s4d_eigenvalues(init, n_modes).to(torch.complex64).expand(channels, n_modes)
        C = torch.randn(channels, n_modes, dtype=torch.complex64)  # B = 1 folded into C
        self.log_dt = tag(nn.Parameter(log_dt), "dynamics")
        self.log_neg_A_real = tag(nn.Parameter(torch.log(-A.real).clone()), "dynamics")
        self.A_imag = tag(nn.Parameter(A.imag.clone()), "dynamics")
        self.C = nn.Parameter(torch.view_as_real(C))

    def forward(self, length: int) -> Tensor:
        dt = self.log_dt.float().exp()[:, None]                          # (H, 1)
        A = torch.complex(-self.log_neg_A_real.float().exp(), self.A_imag.float())
        dtA = dt * A                                                      # (H, N/2)
        C = torch.view_as_complex(self.C.float()) * (torch.exp(dtA) - 1) / A
        steps = torch.arange(length, device=dtA.device, dtype=torch.float32)
        vandermonde = torch.exp(dtA[..., None] * steps)                   # (H, N/2, L)
        return 2 * torch.einsum("hn,hnl->hl", C, vandermonde).real


def fft_conv(u: Tensor, kernel: Tensor) -> Tensor:
    """Causal convolution of ``u`` (B, H, L) with ``kernel`` (H, K<=2L) by FFT of size 2L."""
    length = u.shape[-1]
    n = 2 * length
    y = torch.fft.irfft(torch.fft.rfft(u.float(), n=n) * torch.fft.rfft(kernel.float(), n=n), n=n)
    return y[..., :length].to(u.dtype)


class S4D(nn.Module):
    """The S4D convolution with D skip on (B, L, H) input: ``y = K * u + D u``."""

    def __init__(self, d_model: int, d_state: int = 64, init: str = "inv", bidirectional: bool = False,
                 dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        self.kernel = S4DKernel(directions * d_model, d_state, init, dt_min, dt_max)
        self.D = nn.Parameter(torch.randn(d_model))

    def forward(self, u: Tensor) -> Tensor:
        length = u.shape[1]
        k = self.kernel(length)
        if self.bidirectional:
            forward_k, backward_k = k.chunk(2, dim=0)
            # Causal part at lags 0..L-1; the reversed kernel lands at lags -1..-L (strictly anti-causal).
            k = F.pad(forward_k, (0, length)) + F.pad(backward_k.flip(-1), (length, 0))
        y = fft_conv(u.transpose(1, 2), k).transpose(1, 2)
        return y + u * self.D
