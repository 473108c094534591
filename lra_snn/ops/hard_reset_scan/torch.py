"""PyTorch path of the hard-reset LIF (SpikingSSMs, arXiv 2408.14909; docs/neurons.md, section 8).

The reset-free potential ``u'_t = decay * u'_{t-1} + x_t`` by chunked leaky integration
(``lra_snn.ops.leaky_integrate.torch``); with the hard reset the potential is ``u_t = u'_t - b_t``,
the offsets ``b`` from one pass over time without autograd (``offsets.py``); ``s_t = H(u_t - V_th)``.
``HardResetSpikes`` gives the spikes and potentials the gradient of the time loop whose reset
``(1 - s_t)`` is detached: one reverse linear scan with the per-step decay ``decay * (1 - s_t)``,
which stops the gradient at every spike.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lra_snn.ops.hard_reset_scan.offsets import host_offsets
from lra_snn.ops.leaky_integrate.torch import leaky_integrate_torch
from lra_snn.ops.linear_scan.torch import linear_scan_torch
from lra_snn.ops.surrogate import surrogate_derivative

LinearScan = Callable[[Tensor, Tensor], Tensor]


class HardResetSpikes(torch.autograd.Function):
    """Spikes ``H(u - V_th)`` and potentials ``u = u' - b`` of the hard-reset LIF, with the gradient to
    its input currents ``x`` (``u'`` and ``b`` are those of ``x``, computed without autograd).

    ``linear_scan(a, b)``: the first-order scan its backward runs (the PyTorch or the Triton one).
    """

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        reset_free: Tensor,
        offsets: Tensor,
        v_th: Tensor,
        decay: Tensor,
        surrogate: str,
        linear_scan: LinearScan,
    ) -> tuple[Tensor, Tensor]:
        potential = reset_free - offsets
        margin = potential - v_th
        ctx.save_for_backward(margin, decay)
        ctx.surrogate, ctx.linear_scan = surrogate, linear_scan
        return (margin >= 0).to(x.dtype), potential

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor, grad_potential: Tensor):
        margin, decay = ctx.saved_tensors
        grad = surrogate_derivative(margin, ctx.surrogate) * grad_spikes + grad_potential
        # du_t/dx_j = decay^(t-j) prod_{k=j..t-1} (1 - s_k), so dx_j = grad_j + decay (1 - s_j) dx_{j+1}:
        # a scan over reversed time whose decay is 0 after a spike.
        kept = decay * (margin < 0).to(margin.dtype)
        dx = ctx.linear_scan(kept.flip(1), grad.flip(1)).flip(1)
        return dx, None, None, None, None, None, None


def hard_reset_scan_torch(x: Tensor, v_th: float, decay: float, surrogate: str = "triangle") -> tuple[Tensor, Tensor]:
    """Spikes and potentials before the reset (B, L, D) of ``x`` (B, L, D)."""
    v_th_t, decay_t = (torch.tensor(value, dtype=x.dtype, device=x.device) for value in (v_th, decay))
    with torch.no_grad():
        reset_free = leaky_integrate_torch(x, decay)
    offsets = host_offsets(reset_free, v_th_t, decay_t)
    return HardResetSpikes.apply(x, reset_free, offsets, v_th_t, decay_t, surrogate, linear_scan_torch)
