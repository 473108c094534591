"""S4D: the diagonal state-space layer (Gu, Gupta, Goel and Re 2022, "On the Parameterization and
Initialization of Diagonal State Space Models", arXiv 2206.11893; docs/neurons.md, section 6).

Kernel: the paper's Vandermonde kernel ``K = (B_bar * C) . V_L(A_bar)`` with the zero-order hold
``A_bar = exp(dt A)``, ``B_bar = (exp(dt A) - 1) / A B``, over N/2 modes, one of each conjugate pair:
``K[l] = 2 Re( sum_n C'_n exp(dt A_n)^l )`` with ``C'_n = C_n (exp(dt A_n) - 1) / A_n B_n``: B = 1
folded into C by default or, with ``trainable_B`` (SpikingSSMs' SS4D on ListOps, Text and Path-X, after
the S4 repository's diagonal kernel ``SSMKernelDiag``: S4D-Lin, B initialised to 1), a trainable B.
``vandermonde_kernel`` evaluates it by block powers without the (H, N/2, L) Vandermonde matrix;
the kernel is applied by FFT convolution with n = 2L (no wrap-around): ``y = K * u + D u``.
The bidirectional variant adds a strictly anti-causal kernel.
A, dt (and a trainable B) are tagged "dynamics" (lr 1e-3, weight decay 0); C trains with the rest.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lra_snn.optim.groups import tag

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

    def __init__(
        self,
        channels: int,
        d_state: int = 64,
        init: str = "inv",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        trainable_B: bool = False,
    ) -> None:
        super().__init__()
        if d_state < 2 or d_state % 2:
            raise ValueError(f"d_state must be an even number >= 2 (N/2 complex modes), got {d_state}")
        n_modes = d_state // 2
        log_dt = torch.rand(channels) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        A = s4d_eigenvalues(init, n_modes).to(torch.complex64).expand(channels, n_modes)
        C = torch.randn(channels, n_modes, dtype=torch.complex64)
        self.log_dt = tag(nn.Parameter(log_dt), "dynamics")
        # B = 1, folded into C unless it trains on its own
        self.B = tag(nn.Parameter(torch.view_as_real(torch.ones_like(C)).clone()), "dynamics") if trainable_B else None
        self.log_neg_A_real = tag(nn.Parameter(torch.log(-A.real).clone()), "dynamics")
        self.A_imag = tag(nn.Parameter(A.imag.clone()), "dynamics")
        self.C = nn.Parameter(torch.view_as_real(C))

    def forward(self, length: int) -> Tensor:
        """The (channels, length) kernel, in float64 for float64 parameters and float32 otherwise.

        Autocast stays off: in half precision the kernel's matmul would lose the float32 accuracy.
        """
        with torch.autocast(self.log_dt.device.type, enabled=False):
            dtA, coeff = self.zoh()
            return vandermonde_kernel(coeff, dtA, length)

    def zoh(self) -> tuple[Tensor, Tensor]:
        """The zero-order hold of every mode, (H, N/2) complex: ``dt A`` (``A_bar = exp(dt A)``) and
        ``C B_bar = C (exp(dt A) - 1) / A B``, in float64 for float64 parameters, else float32."""
        dtype = torch.promote_types(self.log_dt.dtype, torch.float32)
        dt = self.log_dt.to(dtype).exp()[:, None]  # (H, 1)
        A = torch.complex(-self.log_neg_A_real.to(dtype).exp(), self.A_imag.to(dtype))
        dtA = dt * A  # (H, N/2)
        # expm1: exp(dt A) - 1 cancels to a few digits in float32 when |dt A| ~ 1e-3.
        coeff = torch.view_as_complex(self.C.to(dtype)) * torch.expm1(dtA) / A
        return dtA, coeff if self.B is None else coeff * torch.view_as_complex(self.B.to(dtype))


def block_size(length: int) -> int:
    """Block length T of ``vandermonde_kernel``: the smallest power of two >= sqrt(length).

    The exponentials cost (L/T + T) per mode, least at T = sqrt(L); measured on one CPU thread
    (H = 64, N = 64, forward + backward), powers of two near sqrt(L) were the fastest at L = 1k, 4k, 16k.
    """
    return 1 << ((length - 1).bit_length() + 1) // 2


def vandermonde_kernel(coeff: Tensor, dtA: Tensor, length: int) -> Tensor:
    """``K[h, l] = 2 Re( sum_n coeff[h, n] exp(l dtA[h, n]) )`` for l < length, by block powers.

    The S4D Vandermonde product, with ``l = b T + j`` (T = ``block_size(length)``, j < T) and
    ``exp(l dtA) = exp(b T dtA) exp(j dtA)``: ``K[h, b, j] = 2 Re( sum_n P[h, b, n] Q[h, n, j] )`` with
    ``P = coeff exp(b T dtA)`` (H, L/T, N/2) and ``Q = exp(j dtA)`` (H, N/2, T), one batched matmul
    instead of the (H, N/2, L) Vandermonde matrix. Each factor is an exponential of its exact
    multiple of dtA (no repeated multiplication), so the rounding does not grow with l. The real
    part comes out of a real matmul over 2 x N/2: ``Re(p q) = Re p Re q + Im p Im(conj q)``.
    """
    block = block_size(length)
    blocks = -(-length // block)
    steps = torch.arange(block, device=dtA.device, dtype=dtA.real.dtype)
    starts = torch.arange(blocks, device=dtA.device, dtype=dtA.real.dtype) * block
    outer = coeff[:, None, :] * torch.exp(dtA[:, None, :] * starts[:, None])  # (H, L/T, N/2)
    inner_conj = torch.exp(dtA.conj()[:, None, :] * steps[:, None])  # (H, T, N/2)
    k = torch.bmm(
        torch.view_as_real(outer).flatten(-2),  # (H, L/T, N)
        torch.view_as_real(inner_conj).flatten(-2).transpose(1, 2),
    )  # (H, N, T)
    return 2 * k.flatten(1)[:, :length]


def fft_conv(u: Tensor, kernel: Tensor) -> Tensor:
    """Causal convolution of ``u`` (B, H, L) with ``kernel`` (H, K<=2L) by FFT of size 2L.

    Computed in float32, or float64 for float64 input.
    """
    length = u.shape[-1]
    n = 2 * length
    dtype = torch.promote_types(u.dtype, torch.float32)
    y = torch.fft.irfft(torch.fft.rfft(u.to(dtype), n=n) * torch.fft.rfft(kernel.to(dtype), n=n), n=n)
    return y[..., :length].to(u.dtype)


class S4D(nn.Module):
    """The S4D convolution with D skip on (B, L, H) input: ``y = K * u + D u``."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        init: str = "inv",
        bidirectional: bool = False,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        trainable_B: bool = False,
    ) -> None:
        super().__init__()
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        self.kernel = S4DKernel(directions * d_model, d_state, init, dt_min, dt_max, trainable_B)
        self.D = nn.Parameter(torch.randn(d_model))

    def conv_kernel(self, length: int) -> Tensor:
        """The (H, L) causal kernel, or for the bidirectional layer the (H, 2L) kernel whose lags
        0..L-1 are causal and whose lags L..2L-1 stand for -L..-1 in the size-2L circular convolution."""
        k = self.kernel(length)
        if not self.bidirectional:
            return k
        forward_k, backward_k = k.chunk(2, dim=0)
        # Causal part at lags 0..L-1; the reversed kernel lands at lags -L..-1 (strictly anti-causal).
        return torch.cat([forward_k, backward_k.flip(-1)], -1)

    def forward(self, u: Tensor) -> Tensor:
        y = fft_conv(u.transpose(1, 2), self.conv_kernel(u.shape[1])).transpose(1, 2)
        return y + u * self.D

    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """The recurrent form's state before the first step: zeros (B, H, N/2), complex."""
        if self.bidirectional:
            raise ValueError(
                "a bidirectional S4D cannot run step by step: its anti-causal kernel reads later steps; "
                "train with model.encoder.layer.bidirectional=false to stream"
            )
        modes = self.kernel.A_imag.shape[1]
        return torch.zeros(
            batch, self.D.shape[0], modes, device=device, dtype=torch.promote_types(dtype, torch.complex64)
        )

    def step(self, u_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """One step of the recurrent form on ``u_t`` (B, H): the discretised diagonal SSM
        ``x_t = A_bar x_{t-1} + B_bar u_t``, ``y_t = 2 Re(C x_t) + D u_t`` (the conjugate mode of each
        pair gives the factor 2), with B_bar folded into C as in the kernel (the state holds
        ``x_t / B_bar``) and the same zero-order hold (``S4DKernel.zoh``), so it computes ``forward``'s
        outputs one step at a time, in constant memory."""
        dtA, coeff = self.kernel.zoh()
        state = torch.exp(dtA) * state + u_t.to(state.dtype)[..., None]
        y = 2 * torch.einsum("hn,bhn->bh", coeff, state).real
        return y.to(u_t.dtype) + u_t * self.D, state
