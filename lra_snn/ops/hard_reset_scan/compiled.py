"""Compiled CPU path of the hard-reset LIF of SpikingSSMs (Shen et al., AAAI 2025, arXiv 2408.14909;
docs/neurons.md, section 8): one numba loop over time forward, one in reverse time backward
(``lra_snn.ops.host_compile``).

Forward, per (batch row, channel block), time outer and channels innermost (vectorised), in the
input's dtype and the naive loop's order of operations, so spikes and potentials are bit-identical to
it: ``u_t = decay * r_{t-1} + x_t``, ``s_t = [u_t - V_th >= 0]``, ``r_t = (1 - s_t) u_t`` (``r_0 = 0``).

The forward loop starts from ``r_0``, zero for the op; ``hard_reset_steps_compiled`` starts it from
a stream's state, ``r = (1 - s) u`` of the step before, so a chunk of a stream computes what the
neuron's step form computes step by step (streaming inference, no autograd).

Backward, from the saved potentials (the margin ``u_t - V_th`` and the spike recomputed exactly), with
``H'`` the surrogate slope (``lra_snn.ops.surrogate.compiled``): ``g_t = H'(u_t - V_th) ds_t + du_t``
and ``dx_t = g_t + decay (1 - s_t) dx_{t+1}``, the reset detached, so the gradient stops at every spike.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.compiled_rows import parallel_kernel, run_rows
from lra_snn.ops.surrogate.compiled import SURROGATE_CODES, surrogate_slope


def _forward_loop(
    x: np.ndarray, initial: np.ndarray, spikes: np.ndarray, potentials: np.ndarray, constants: np.ndarray, width: int
) -> None:
    """Fill ``spikes`` and ``potentials`` (B, L, D) from ``x`` (B, L, D) and ``r_0`` = ``initial`` (B, D);
    ``constants`` = (V_th, decay), all in one dtype."""
    batch, length, channels = x.shape
    v_th, decay = constants[0], constants[1]
    zero, one = x.dtype.type(0), x.dtype.type(1)
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, max((task % blocks) * width, 0)  # start >= 0 spares a wraparound check
        size = min(channels, start + width) - start
        after_reset = np.empty(size, x.dtype)
        for i in range(size):
            after_reset[i] = initial[row, start + i]
        for t in range(length):
            for i in range(size):
                potential = decay * after_reset[i] + x[row, t, start + i]
                fired = one if potential - v_th >= zero else zero
                potentials[row, t, start + i] = potential
                spikes[row, t, start + i] = fired
                after_reset[i] = (one - fired) * potential


def _backward_loop(
    potentials: np.ndarray,
    grad_spikes: np.ndarray,
    grad_potentials: np.ndarray,
    grad_x: np.ndarray,
    constants: np.ndarray,
    code: int,
    width: int,
) -> None:
    """Fill ``grad_x`` (B, L, D) in reverse time; ``constants`` = (V_th, decay), all in one dtype."""
    batch, length, channels = potentials.shape
    v_th, decay = constants[0], constants[1]
    zero = potentials.dtype.type(0)
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, max((task % blocks) * width, 0)
        size = min(channels, start + width) - start
        carry = np.zeros(size, potentials.dtype)  # dx_{t+1}
        for t in range(length - 1, -1, -1):
            for i in range(size):
                margin = potentials[row, t, start + i] - v_th
                grad = surrogate_slope(margin, code) * grad_spikes[row, t, start + i]
                grad = grad + grad_potentials[row, t, start + i]
                kept = decay if margin < zero else zero
                total = grad + kept * carry[i]
                carry[i] = total
                grad_x[row, t, start + i] = total


forward_kernel = parallel_kernel(_forward_loop)
backward_kernel = parallel_kernel(_backward_loop)


class CompiledHardResetScan(torch.autograd.Function):
    """Spikes and potentials before the reset (B, L, D) of ``x``; gradient to ``x``."""

    @staticmethod
    def forward(ctx, x: Tensor, v_th: float, decay: float, surrogate: str) -> tuple[Tensor, Tensor]:
        x = x.detach().contiguous()
        spikes = dispatch.allocate(x.shape, x)
        potentials = dispatch.allocate(x.shape, x)
        constants = torch.tensor([v_th, decay], dtype=x.dtype)
        initial = x.new_zeros(x.shape[0], x.shape[2])
        run_rows(forward_kernel(), (x, initial, spikes, potentials, constants), like=x)
        ctx.save_for_backward(potentials, constants)
        ctx.code = SURROGATE_CODES[surrogate]
        return spikes, potentials

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor, grad_potentials: Tensor):  # autograd gives zeros for an unused output
        potentials, constants = ctx.saved_tensors
        grad_x = dispatch.allocate(potentials.shape, potentials)
        run_rows(
            backward_kernel(),
            (
                potentials,
                grad_spikes.to(potentials.dtype).contiguous(),
                grad_potentials.to(potentials.dtype).contiguous(),
                grad_x,
                constants,
            ),
            ctx.code,
            like=potentials,
        )
        return grad_x, None, None, None


def hard_reset_scan_compiled(
    x: Tensor, v_th: float, decay: float, surrogate: str = "triangle"
) -> tuple[Tensor, Tensor]:
    """Spikes and potentials before the reset (B, L, D) of ``x`` (B, L, D), float32 or float64 on the CPU."""
    return CompiledHardResetScan.apply(x, float(v_th), float(decay), surrogate)


def hard_reset_steps_compiled(
    x: Tensor, potential: Tensor, spikes: Tensor, v_th: float, decay: float
) -> tuple[Tensor, Tensor]:
    """Spikes and potentials (B, T, D) of a chunk ``x`` (B, T, D) of a stream whose state after the step
    before is ``potential`` and ``spikes`` (B, D), without autograd: the step form's
    ``u_t = decay ((1 - s_{t-1}) u_{t-1}) + x_t``, ``s_t = [u_t - V_th >= 0]``, step for step."""
    x = x.detach().contiguous()
    initial = ((1 - spikes.detach()) * potential.detach()).contiguous()
    out_spikes, potentials = dispatch.allocate(x.shape, x), dispatch.allocate(x.shape, x)
    constants = torch.tensor([v_th, decay], dtype=x.dtype)
    run_rows(forward_kernel(), (x, initial, out_spikes, potentials, constants), like=x)
    return out_spikes, potentials
