"""Decoupled reset of soft-reset spiking neurons: reset-free potential, then threshold scan.

PRF paper (arXiv 2410.03530), decoupled reset; neurons.md section 1. ``leaky_integrate`` gives
the reset-free potential ``u'_t = beta * u'_{t-1} + x_t`` in parallel. A soft reset subtracts
``V_th`` from the potential at each spike, so ``u_t = u'_t - b_t`` with ``u'`` the reset-free
potential and the reset offset ``b_1 = 0``, ``b_{t+1} = decay * (b_t + V_th * s_t)``, i.e.
``b_t = V_th * sum_{i<t} decay^(t-i) s_i`` (the threshold is ``d_t = V_th + b_t``). The spikes
``s_t = [u'_t - V_th >= b_t]`` need one cheap pass over time without autograd
(``threshold_scan``; a Triton kernel on CUDA tensors); gradients then flow through ``u'`` only (reset detached), or through the
reset as well via ``coupled_reset_spike``, whose backward is one reverse linear scan.
``spike_trace`` is the causal convolution of a spike train with a decaying kernel, used by the
refractory neuron's parallel iterations (neurons.md section 3).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.surrogate import spike
from lra_snn.ops import dispatch
from lra_snn.ops.linear_scan import linear_scan
from lra_snn.ops.threshold_scan import threshold_scan_backend, threshold_scan_kernel


def _per_channel(value: float | Tensor, like: Tensor, name: str) -> Tensor:
    """``value`` as a tensor of ``like``'s dtype and device, scalar or one entry per channel."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device).detach()
    if value.dim() > 1 or (value.dim() == 1 and value.shape[0] != like.shape[-1]):
        raise ValueError(f"{name} must be a scalar or have one entry per channel ({like.shape[-1]}), "
                         f"got shape {tuple(value.shape)}")
    return value


def _scan_offsets_torch(excess: Tensor, offset: Tensor, v_th: Tensor, decay: Tensor) -> None:
    """Fill ``offset`` (L, B, D) from ``excess`` (L, B, D), time-major, with in-place torch ops."""
    fired = torch.empty_like(excess[0])
    # Lists of the per-step views: indexing a tensor inside the loop costs more than the ops.
    excess_t, offset_t = excess.unbind(0), offset.unbind(0)
    offset_t[0].zero_()
    for t in range(len(excess_t) - 1):
        torch.ge(excess_t[t], offset_t[t], out=fired)
        torch.addcmul(offset_t[t], fired, v_th, out=offset_t[t + 1])
        offset_t[t + 1].mul_(decay)


def _scan_offsets_numpy(excess: Tensor, offset: Tensor, v_th: Tensor, decay: Tensor) -> None:
    """The same loop on NumPy views of the same CPU memory: on (B, D) slices the per-call
    overhead dominates, and NumPy's is a fraction of torch's."""
    excess_t, offset_t = list(excess.numpy()), list(offset.numpy())
    v_th, decay = v_th.numpy(), decay.numpy()
    fired = np.empty_like(excess_t[0])
    offset_t[0].fill(0)
    for t in range(len(excess_t) - 1):
        np.greater_equal(excess_t[t], offset_t[t], out=fired)
        fired *= v_th
        np.add(offset_t[t], fired, out=offset_t[t + 1])
        offset_t[t + 1] *= decay


HOST_LOOPS = ("numpy", "torch")
BACKENDS = (*HOST_LOOPS, "triton")


def _default_backend(excess: Tensor) -> str:
    """The host loop for ``excess``: NumPy for float32/float64 CPU tensors (cheapest per step), torch otherwise."""
    numpy_ok = excess.device.type == "cpu" and excess.dtype in (torch.float32, torch.float64)
    return "numpy" if numpy_ok else "torch"


def scan_backend(neuron_backend: str | None, excess: Tensor) -> str | None:
    """``threshold_scan``'s backend for a neuron's ``backend`` option (None | "torch" | "triton"):
    "torch" (the PyTorch path, no Triton) is the host loop; the others pass through."""
    return _default_backend(excess) if neuron_backend == "torch" else neuron_backend


@torch.no_grad()
def threshold_scan(excess: Tensor, v_th: float | Tensor, decay: float | Tensor, backend: str | None = None) -> Tensor:
    """Reset offsets ``b`` (B, L, D) of a soft-reset neuron from its excess ``u' - V_th``.

    ``excess`` is the reset-free potential minus the threshold; the neuron spikes at t iff
    ``excess_t - b_t >= 0``. ``v_th`` and ``decay`` are scalars or per-channel (D,) tensors.
    One pass over time without autograd. ``backend``: "triton" (the kernel of
    ``lra_snn.ops.threshold_scan``; raises where it cannot run), "numpy" (float32/float64 CPU tensors
    only) or "torch" (host loops over contiguous (B, D) slices, in place); None picks Triton on CUDA
    tensors where the dispatch can, else numpy where it can, else torch.
    """
    if excess.dim() != 3:
        raise ValueError(f"threshold_scan expects (batch, length, channels), got shape {tuple(excess.shape)}")
    if backend not in (None, *BACKENDS):
        raise ValueError(f"unknown threshold_scan backend {backend!r}; choose one of {BACKENDS} or None")
    if backend == "numpy" and _default_backend(excess) != "numpy":
        raise ValueError(f"the numpy backend needs a float32/float64 CPU tensor, got {excess.dtype} on "
                         f"{excess.device}; use backend='torch'")
    v_th = _per_channel(v_th, excess, "v_th")
    decay = _per_channel(decay, excess, "decay")
    if backend in (None, "triton") and threshold_scan_backend(excess, backend) == "triton":
        channels = excess.shape[-1]
        return threshold_scan_kernel(excess, v_th.expand(channels), decay.expand(channels))
    time_major = excess.transpose(0, 1).contiguous()
    offset = torch.empty_like(time_major)
    scan = _scan_offsets_numpy if (backend or _default_backend(excess)) == "numpy" else _scan_offsets_torch
    scan(time_major, offset, v_th, decay)
    return offset.transpose(0, 1)


def leaky_integrate(x: Tensor, decay: float, chunk: int = 32, backend: str | None = None) -> Tensor:
    """``h_t = decay * h_{t-1} + x_t`` along dim 1 of x (B, L, D), h_0 = 0, differentiable in x.

    PyTorch path, chunked: within each chunk of ``chunk`` steps a product with the lower-triangular
    matrix ``decay^(i-j)``, then the chunk-end states are carried across chunks by a short linear
    scan (decay^chunk per chunk). Fewer passes over memory than a doubling scan for a constant
    decay. ``backend`` (None | "torch" | "triton"): where the dispatch picks Triton, the Triton
    linear scan with a per-channel decay runs instead.
    """
    if x.dim() != 3 or x.shape[1] == 0:
        raise ValueError(f"leaky_integrate expects (batch, length >= 1, channels), got shape {tuple(x.shape)}")
    if not 0 <= decay <= 1:
        raise ValueError(f"decay must lie in [0, 1], got {decay}")
    batch, length, channels = x.shape
    if dispatch.select_backend("linear_scan", [x], backend) == "triton":
        return linear_scan(torch.full((channels,), decay, dtype=x.dtype, device=x.device), x, backend="triton")
    size = min(chunk, length)
    chunks = -(-length // size)
    blocks = torch.nn.functional.pad(x, (0, 0, 0, chunks * size - length)).view(batch, chunks, size, channels)
    index = torch.arange(size, device=x.device)
    lag = index.unsqueeze(1) - index.unsqueeze(0)
    powers = torch.tensor(decay, dtype=x.dtype, device=x.device) ** lag.clamp_min(0)
    within = torch.matmul(torch.where(lag >= 0, powers, torch.zeros_like(powers)), blocks)
    decay_chunk = torch.full((channels,), decay ** size, dtype=x.dtype, device=x.device)
    ends = linear_scan(decay_chunk, within[:, :, -1], backend=backend)
    carried = torch.cat([torch.zeros_like(ends[:, :1]), ends[:, :-1]], 1)
    entry_decay = torch.tensor(decay, dtype=x.dtype, device=x.device) ** (index + 1).to(x.dtype)
    h = within + entry_decay.view(1, 1, size, 1) * carried.unsqueeze(2)
    return h.reshape(batch, chunks * size, channels)[:, :length]


def spike_trace(spikes: Tensor, decay: float) -> Tensor:
    """``h_t = sum_{i<t} decay^(t-1-i) s_i``: the trace of the spikes strictly before step t.

    A causal convolution of the spike train (B, L, D) with ``(0, 1, decay, decay^2, ...)``,
    i.e. the leaky integration ``h_t = decay * h_{t-1} + s_{t-1}`` (PyTorch path; the Triton
    kernel of the refractory iteration, ``lra_snn.ops.refractory``, fuses it).
    """
    previous = torch.cat([torch.zeros_like(spikes[:, :1]), spikes[:, :-1]], 1)
    return leaky_integrate(previous, decay, backend="torch")


def surrogate_derivative(margin: Tensor, surrogate: str) -> Tensor:
    """The surrogate gradient ``dH/dv`` of ``spike(v, surrogate)`` at ``v = margin``."""
    with torch.enable_grad():
        v = margin.detach().requires_grad_()
        (slope,) = torch.autograd.grad(spike(v, surrogate).sum(), v)
    return slope


class _CoupledResetSpike(torch.autograd.Function):
    """``H(excess - b)`` with the gradient of the sequential neuron whose reset is not detached."""

    @staticmethod
    def forward(ctx, excess: Tensor, offset: Tensor, v_th: Tensor, decay: Tensor, surrogate: str,
                backend: str | None) -> Tensor:
        margin = excess - offset
        ctx.save_for_backward(margin, v_th, decay)
        ctx.surrogate, ctx.backend = surrogate, backend
        return (margin >= 0).to(excess.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor):
        margin, v_th, decay = ctx.saved_tensors
        slope = surrogate_derivative(margin, ctx.surrogate)
        # With delta_t = dL/dmargin_t and E_t = sum_{j>=t} decay^(j-t) delta_j, the chain rule
        # through the reset (dmargin_j/ds_t = -V_th decay^(j-t), j > t) gives the reverse
        # recurrence E_t = slope_t * g_t + decay * (1 - V_th * slope_t) * E_{t+1},
        # and delta_t = E_t - decay * E_{t+1}.
        coefficient = (decay * (1 - v_th * slope)).flip(1)
        inclusive = linear_scan(coefficient, (slope * grad_spikes).flip(1), backend=ctx.backend).flip(1)
        following = torch.cat([inclusive[:, 1:], torch.zeros_like(inclusive[:, :1])], 1)
        return inclusive - decay * following, None, None, None, None, None


def coupled_reset_spike(excess: Tensor, offset: Tensor, v_th: float | Tensor, decay: float | Tensor,
                        surrogate: str, backend: str | None = None) -> Tensor:
    """Spikes ``H(excess - offset)`` whose gradient also flows through the reset (not detached).

    ``offset`` must come from ``threshold_scan(excess, v_th, decay)``; the gradient reaches
    ``excess`` only (``v_th`` and ``decay`` are constants here). ``backend`` (None | "torch" |
    "triton") is the reverse scan's (``lra_snn.ops.linear_scan``).
    """
    v_th = _per_channel(v_th, excess, "v_th")
    decay = _per_channel(decay, excess, "decay")
    return _CoupledResetSpike.apply(excess, offset.detach(), v_th, decay, surrogate, backend)
