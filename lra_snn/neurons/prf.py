"""Parallel Resonate-and-Fire (PRF) neuron (arXiv 2410.03530; neurons.md section 2).

Complex membrane without explicit reset, per channel ``A = exp(Delta * (-1/tau + i*theta))``:
``z_t = A * z_{t-1} + Delta * x_t``, ``s_t = H(Re z_t - V_th)``. Since x is real, ``Re z`` is
the causal convolution of x with ``K[t] = Delta * exp(-Delta*t/tau) * cos(Delta*theta*t)``,
computed by FFT (zero-padded to 2L, no wrap-around); gradients reach ``log_Delta`` and
``theta`` through K. On CUDA (or when forced) the complex recurrence itself runs instead as the
Triton complex scan (``lra_snn.ops.complex_scan``), gradients then reaching A and Delta. The
step form keeps ``z = u + i*r`` as two real states.

``reset=True`` is the paper's "PRF with reset" ablation, defined here (neurons.md) as the same
membrane plus the soft-reset offset of the decoupled-reset LIF with decay ``Re(A)``:
``b_t = Re(A) * (b_{t-1} + V_th * s_{t-1})``, ``s_t = H(Re z_t - V_th - b_t)``; the reset carries
no gradient (as in the decoupled reset), so the parallel form is exact.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from lra_snn.neurons.base import Neuron
from lra_snn.ops.surrogate import SURROGATES, spike
from lra_snn.neurons.threshold_scan import scan_backend, threshold_scan
from lra_snn.ops import dispatch
from lra_snn.ops.complex_scan import complex_scan
from lra_snn.training.params import tag


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
        raise ValueError(f"causal_fft_conv expects x (B, L, D) and kernel (D, L), got {tuple(x.shape)} "
                         f"and {tuple(kernel.shape)}")
    return _CausalFFTConv.apply(x, kernel)


class PRFState(NamedTuple):
    """Streaming state after a step, each (B, D): ``Re z``, ``Im z``, reset offset, spikes."""

    real: Tensor
    imag: Tensor
    offset: Tensor
    spikes: Tensor


class PRF(Neuron):
    """Resonate-and-fire neuron with trainable per-channel ``log_Delta`` and ``theta``.

    ``theta_max`` (default pi/6, the paper's ListOps value) sets the init range of theta and
    is task-specific (Text pi/8, Retrieval pi/7, Image 8*pi, Pathfinder 2*pi/0.6): set it in
    the config. ``log_Delta`` starts uniform in ``[log delta_min, log delta_max]``.
    Computation runs in the input dtype, promoted to at least float32. ``backend``: None (the
    Triton complex scan on CUDA, else FFT), "torch" (FFT) or "triton" (see ``lra_snn.ops.dispatch``).
    """

    def __init__(self, d_model: int, *, theta_max: float = math.pi / 6, tau: float = 2.0, v_th: float = 1.0,
                 delta_min: float = 1e-3, delta_max: float = 1e-1, reset: bool = False,
                 surrogate: str = "atan", backend: str | None = None) -> None:
        super().__init__()
        if not 0 < delta_min <= delta_max:
            raise ValueError(f"need 0 < delta_min <= delta_max, got {delta_min}, {delta_max}")
        if theta_max < 0 or tau <= 0 or v_th <= 0:
            raise ValueError(f"need theta_max >= 0, tau > 0, v_th > 0; got {theta_max}, {tau}, {v_th}")
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {SURROGATES}")
        self.d_model = d_model
        self.tau = float(tau)
        self.v_th = float(v_th)
        self.reset = reset
        self.surrogate = surrogate
        self.backend = backend
        log_delta = torch.empty(d_model).uniform_(math.log(delta_min), math.log(delta_max))
        self.log_delta = tag(nn.Parameter(log_delta), "dynamics")
        self.theta = tag(nn.Parameter(torch.rand(d_model) * theta_max), "dynamics")


    def _dynamics(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """``Delta``, ``Re A = exp(-Delta/tau) cos(Delta theta)`` and ``Im A``, per channel in ``dtype``."""
        delta = self.log_delta.to(dtype).exp()
        angle = delta * self.theta.to(dtype)
        magnitude = torch.exp(-delta / self.tau)
        return delta, magnitude * torch.cos(angle), magnitude * torch.sin(angle)

    def _margin(self, x: Tensor) -> Tensor:
        """``Re z_t - V_th - b_t`` (B, L, D) by FFT convolution, differentiable in x and the dynamics."""
        self._check_channels(x)
        dtype = torch.promote_types(x.dtype, torch.float32)
        excess = self._membrane(x.to(dtype)) - self.v_th
        if not self.reset:
            return excess
        decay = self._dynamics(dtype)[1].detach()
        return excess - threshold_scan(excess.detach(), self.v_th, decay, scan_backend(self.backend, excess))

    def _membrane(self, x: Tensor) -> Tensor:
        """``Re z`` (B, L, D): the Triton complex scan where the dispatch picks it, else FFT convolution."""
        if dispatch.select_backend("complex_scan", [x], self.backend) == "triton":
            delta, real_a, imag_a = self._dynamics(x.dtype)
            drive = torch.complex(delta * x, torch.zeros_like(x))
            return complex_scan(torch.complex(real_a, imag_a), drive, backend="triton").real
        kernel = prf_kernel(self.log_delta.to(x.dtype), self.theta.to(x.dtype), self.tau, x.shape[1])
        return causal_fft_conv(x, kernel)

    def forward(self, x: Tensor) -> Tensor:
        """Spikes (B, L, D) of the input currents ``x`` (B, L, D), in parallel over time."""
        return self._record(spike(self._margin(x), self.surrogate).to(x.dtype))

    def margin(self, x: Tensor) -> Tensor:
        """``Re z_t - V_th - b_t`` (B, L, D) from the parallel form, without autograd."""
        with torch.no_grad():
            return self._margin(x)

    def run_sequential(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The definition: the complex recurrence as a time loop; spikes and margins (B, L, D)."""
        self._check_channels(x)
        dtype = torch.promote_types(x.dtype, torch.float32)
        delta, real_a, imag_a = self._dynamics(dtype)
        rotation = torch.complex(real_a, imag_a)
        decay = real_a.detach()
        z = torch.zeros(x.shape[0], self.d_model, dtype=rotation.dtype, device=x.device)
        offset = torch.zeros(x.shape[0], self.d_model, dtype=dtype, device=x.device)
        s_t = torch.zeros_like(offset)
        spikes, margins = [], []
        for x_t in x.to(dtype).unbind(1):
            z = rotation * z + delta * x_t
            if self.reset:
                offset = decay * (offset + self.v_th * s_t.detach())
            margin = z.real - self.v_th - offset
            s_t = spike(margin, self.surrogate)
            spikes.append(s_t)
            margins.append(margin)
        return torch.stack(spikes, 1).to(x.dtype), torch.stack(margins, 1)

    def forward_sequential(self, x: Tensor) -> Tensor:
        """Spikes from the plain time loop (the definition); same values and gradients as ``forward``."""
        return self._record(self.run_sequential(x)[0])

    def init_state(self, batch: int, device: torch.device | None = None,
                   dtype: torch.dtype = torch.float32) -> PRFState:
        zeros = torch.zeros(batch, self.d_model, device=device, dtype=torch.promote_types(dtype, torch.float32))
        return PRFState(zeros, zeros, zeros, zeros)

    def step(self, x_t: Tensor, state: PRFState) -> tuple[Tensor, PRFState]:
        """One time step with two real states: ``x_t`` (B, D) -> spikes (B, D) and the new state."""
        delta, p, q = self._dynamics(state.real.dtype)
        real = p * state.real - q * state.imag + delta * x_t.to(state.real.dtype)
        imag = q * state.real + p * state.imag
        offset = p.detach() * (state.offset + self.v_th * state.spikes.detach()) if self.reset else state.offset
        spikes = spike(real - self.v_th - offset, self.surrogate)
        return spikes.to(x_t.dtype), PRFState(real, imag, offset, spikes)

    def macs_per_step(self) -> int:
        """5: the 2x2 rotation of the two real states by ``A`` (4) and ``Delta x_t`` (1); 6 with reset
        (the offset decay ``Re(A) b``)."""
        return 6 if self.reset else 5
