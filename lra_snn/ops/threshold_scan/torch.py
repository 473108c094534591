"""PyTorch path of the threshold scan (PRF paper, arXiv 2410.03530, decoupled reset; docs/neurons.md, section 1).

A soft reset subtracts ``V_th`` from the potential at each spike, so ``u_t = u'_t - b_t`` with
``u'`` the reset-free potential and the reset offset ``b_1 = 0``, ``b_{t+1} = decay * (b_t + V_th * s_t)``,
i.e. ``b_t = V_th * sum_{i<t} decay^(t-i) s_i``. The spikes ``s_t = [u'_t - V_th >= b_t]`` need one
cheap pass over time without autograd. On float32/float64 CPU tensors it is a compiled loop
(``offsets_loop.py``, numba) where numba is installed, else a NumPy loop over (B, D) slices (four NumPy
calls per step; on such small slices the per-call overhead dominates, and NumPy's is a fraction of
torch's); elsewhere a torch loop. All three give bit-identical offsets. Gradients then flow through
``u'`` only (reset detached), or through the reset as well (``CoupledResetSpike``), whose backward is
one reverse linear scan.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.linear_scan.torch import linear_scan_torch
from lra_snn.ops.surrogate import spike, surrogate_derivative
from lra_snn.ops.threshold_scan.offsets_loop import offsets_kernel

HOST_LOOPS = ("compiled", "numpy", "torch")


def per_channel(value: float | Tensor, like: Tensor, name: str) -> Tensor:
    """``value`` as a tensor of ``like``'s dtype and device, scalar or one entry per channel."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device).detach()
    if value.dim() > 1 or (value.dim() == 1 and value.shape[0] != like.shape[-1]):
        raise ValueError(
            f"{name} must be a scalar or have one entry per channel ({like.shape[-1]}), got shape {tuple(value.shape)}"
        )
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
    """The same loop on NumPy views of the same CPU memory."""
    excess_t, offset_t = list(excess.numpy()), list(offset.numpy())
    v_th_np, decay_np = v_th.numpy(), decay.numpy()
    fired = np.empty_like(excess_t[0])
    offset_t[0].fill(0)
    for t in range(len(excess_t) - 1):
        np.greater_equal(excess_t[t], offset_t[t], out=fired)
        fired *= v_th_np
        np.add(offset_t[t], fired, out=offset_t[t + 1])
        offset_t[t + 1] *= decay_np


def _scan_offsets_compiled(excess: Tensor, v_th: Tensor, decay: Tensor) -> Tensor:
    """Offsets (B, L, D) of a contiguous ``excess`` by the compiled loop, in its (B, L, D) layout."""
    kernel = offsets_kernel()
    assert kernel is not None  # host_offsets chose this loop only where numba imports
    offset = torch.empty_like(excess)
    channels = excess.shape[-1]
    kernel(
        excess.numpy(),
        offset.numpy(),
        v_th.expand(channels).contiguous().numpy(),
        decay.expand(channels).contiguous().numpy(),
    )
    return offset


@torch.no_grad()
def host_offsets(excess: Tensor, v_th: Tensor, decay: Tensor, loop: str | None = None) -> Tensor:
    """Offsets ``b`` (B, L, D) of ``excess`` (B, L, D) by a loop over time; ``v_th``, ``decay``
    tensors of ``excess``'s dtype, scalar or per channel (D,). ``loop``: "compiled" or "numpy"
    (float32/float64 CPU tensors only; "compiled" needs numba), "torch", or None (the compiled loop
    where it can run, else NumPy where it can run, else torch).
    """
    numpy_ok = excess.device.type == "cpu" and excess.dtype in (torch.float32, torch.float64)
    if loop is None:
        loop = ("compiled" if offsets_kernel() is not None else "numpy") if numpy_ok else "torch"
    if loop not in HOST_LOOPS:
        raise ValueError(f"unknown host loop {loop!r}; choose one of {HOST_LOOPS}")
    if loop != "torch" and not numpy_ok:
        raise ValueError(
            f"the {loop} loop needs a float32/float64 CPU tensor, got {excess.dtype} on "
            f"{excess.device}; use loop='torch'"
        )
    if loop == "compiled":
        if offsets_kernel() is None:
            raise ValueError("the compiled loop needs numba, which is not installed; use loop='numpy'")
        return _scan_offsets_compiled(excess.contiguous(), v_th, decay)
    time_major = excess.transpose(0, 1).contiguous()
    offset = torch.empty_like(time_major)
    (_scan_offsets_numpy if loop == "numpy" else _scan_offsets_torch)(time_major, offset, v_th, decay)
    return offset.transpose(0, 1)


ReverseScan = Callable[[Tensor, Tensor], Tensor]


class CoupledResetSpike(torch.autograd.Function):
    """``H(excess - b)`` with the gradient of the sequential neuron whose reset is not detached.

    ``reverse_scan(a, b)``: the first-order scan its backward runs (the PyTorch or the Triton one).
    """

    @staticmethod
    def forward(
        ctx, excess: Tensor, offset: Tensor, v_th: Tensor, decay: Tensor, surrogate: str, reverse_scan: ReverseScan
    ) -> Tensor:
        margin = excess - offset
        ctx.save_for_backward(margin, v_th, decay)
        ctx.surrogate, ctx.reverse_scan = surrogate, reverse_scan
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
        inclusive = ctx.reverse_scan(coefficient, (slope * grad_spikes).flip(1)).flip(1)
        following = torch.cat([inclusive[:, 1:], torch.zeros_like(inclusive[:, :1])], 1)
        return inclusive - decay * following, None, None, None, None, None


def reset_spikes(
    excess: Tensor,
    offsets: Tensor,
    v_th: Tensor,
    decay: Tensor,
    surrogate: str,
    detach_reset: bool,
    reverse_scan: ReverseScan,
) -> Tensor:
    """Spikes ``H(excess - offsets)`` with the surrogate gradient through ``excess``, and through the
    reset as well unless ``detach_reset`` (the offsets must be those of ``excess``, ``v_th``, ``decay``)."""
    if detach_reset:
        return spike(excess - offsets, surrogate)
    return CoupledResetSpike.apply(excess, offsets, v_th, decay, surrogate, reverse_scan)


def threshold_scan_torch(
    excess: Tensor, v_th: float | Tensor, decay: float | Tensor, surrogate: str = "atan", detach_reset: bool = True
) -> tuple[Tensor, Tensor]:
    """Spikes and offsets (B, L, D) from ``excess`` (B, L, D); ``v_th``, ``decay`` scalars or per channel (D,)."""
    v_th, decay = per_channel(v_th, excess, "v_th"), per_channel(decay, excess, "decay")
    offsets = host_offsets(excess.detach(), v_th, decay)
    return reset_spikes(excess, offsets, v_th, decay, surrogate, detach_reset, linear_scan_torch), offsets
