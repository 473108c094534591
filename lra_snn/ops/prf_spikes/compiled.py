"""Compiled CPU path of the PRF spikes (Parallel Resonate-and-Fire, arXiv 2410.03530, eq. 19 and
``s_t = H(Re z_t - V_th)``; docs/neurons.md, section 2): the membrane's numba loops
(``lra_snn.ops.prf_membrane.compiled``) with the threshold and the surrogate gradient fused in.

Forward, per (batch row, channel block): the membrane's step (``rotate``, so ``Re z`` is the same bits
as the membrane op's) and, from it, ``s_t = [Re z_t - V_th >= 0]`` written directly; ``Re z`` itself is
never stored, only the state checkpoints every ``CHUNK`` steps when a gradient is needed.

Backward, chunk by chunk from the last: the chunk's states are replayed from its checkpoint
(``replay_chunk``), the gradient reaching ``Re z`` is formed in the loop as
``ds_t H'(Re z_t - V_th)`` with the surrogate slope ``H'`` (``lra_snn.ops.surrogate.compiled``), and the
membrane's reverse walk (``adjoint_chunk``) gives dx and the compensated per-row sums of the gradients in
(Delta, Re A, Im A), summed over the rows in float64.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops import dispatch
from lra_snn.ops.compiled_rows import copy_row, parallel_kernel, run_rows
from lra_snn.ops.prf_membrane.compiled import (
    CHUNK,
    adjoint_chunk,
    backward_buffers,
    checkpoint,
    replay_chunk,
    rotate,
)
from lra_snn.ops.prf_membrane.naive import prf_dynamics
from lra_snn.ops.surrogate.compiled import SURROGATE_CODES, surrogate_slope


def _forward_loop(
    x: np.ndarray,
    dynamics: np.ndarray,
    threshold: np.ndarray,
    state: np.ndarray,
    spikes: np.ndarray,
    checkpoints: np.ndarray,
    keep_checkpoints: bool,
    width: int,
) -> None:
    """Fill ``spikes`` (B, L, D) from ``x`` (B, L, D), ``dynamics`` (3, D) = (Delta, Re A, Im A) and
    ``threshold`` = (V_th,), from the state ``state`` (B, 2, D) = (Re z, Im z) before the first step, which
    receives the state after the last; when ``keep_checkpoints``, ``checkpoints`` (B, ceil(L / CHUNK), 2, D)
    = (Re, Im) of the state entering each chunk of ``CHUNK`` steps."""
    batch, length, channels = x.shape
    v_th = threshold[0]
    zero, one = x.dtype.type(0), x.dtype.type(1)
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        block = dynamics[:, start:stop].copy()
        real_state = state[row, 0, start:stop].copy()
        imag_state = state[row, 1, start:stop].copy()
        for t in range(length):
            if keep_checkpoints and t % CHUNK == 0:
                checkpoint(checkpoints, row, t // CHUNK, start, real_state, imag_state)
            rotate(x[row, t, start:stop], block, real_state, imag_state, real_state, imag_state)
            spikes_t = spikes[row, t, start:stop]
            for i in range(stop - start):
                spikes_t[i] = one if real_state[i] - v_th >= zero else zero
        state[row, 0, start:stop] = real_state
        state[row, 1, start:stop] = imag_state


def _backward_loop(
    x: np.ndarray,
    dynamics: np.ndarray,
    threshold: np.ndarray,
    checkpoints: np.ndarray,
    dspikes: np.ndarray,
    dx: np.ndarray,
    row_sums: np.ndarray,
    code: int,
    parameters: bool,
    width: int,
) -> None:
    """Fill ``dx`` (B, L, D) and, when ``parameters``, ``row_sums`` (B, 3, D): each row's sums over time
    of the gradients in (Delta, Re A, Im A), from the gradient ``dspikes`` (B, L, D) reaching the spikes
    and the surrogate ``code``.

    Chunk by chunk from the last, streaming memory forward only: the chunk's states are replayed from
    its checkpoint, the gradient of its ``Re z`` formed from them and ``dspikes``, the reverse walk run
    on the buffers and ``dx`` copied out."""
    batch, length, channels = dspikes.shape
    v_th = threshold[0]
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        block = dynamics[:, start:stop].copy()
        adjoint, sums, lost, real_z, imag_z, upstream, dx_chunk, x_chunk = backward_buffers(stop - start, dspikes)
        for chunk in range(-(-length // CHUNK) - 1, -1, -1):
            first = chunk * CHUNK
            steps = min(length, first + CHUNK) - first
            replay_chunk(x, checkpoints, row, chunk, start, block, x_chunk, real_z, imag_z)
            for s in range(steps):
                dspikes_s, real_s, upstream_s = dspikes[row, first + s, start:stop], real_z[s + 1], upstream[s]
                for i in range(stop - start):
                    upstream_s[i] = dspikes_s[i] * surrogate_slope(real_s[i] - v_th, code)
            adjoint_chunk(block, steps, upstream, dx_chunk, x_chunk, real_z, imag_z, adjoint, sums, lost, parameters)
            for s in range(steps):
                copy_row(dx_chunk[s], dx[row, first + s, start:stop])
        if parameters:
            row_sums[row, :, start:stop] = sums


forward_kernel = parallel_kernel(_forward_loop)
backward_kernel = parallel_kernel(_backward_loop)


def _spikes(
    x: Tensor, dynamics: Tensor, threshold: Tensor, keep_checkpoints: bool, state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Spikes (B, L, D) and the checkpoints ((B, ceil(L / CHUNK), 2, D) when ``keep_checkpoints``, else an
    unused (1, 1, 2, 1)), from ``state`` (B, 2, D) = (Re z, Im z), updated in place to the state after the
    last step (zeros when None)."""
    batch, length, channels = x.shape
    spikes = dispatch.allocate(x.shape, x)
    shape = (batch, -(-length // CHUNK), 2, channels) if keep_checkpoints else (1, 1, 2, 1)
    checkpoints = x.new_empty(shape)
    state = x.new_zeros(batch, 2, channels) if state is None else state
    run_rows(forward_kernel(), (x, dynamics, threshold, state, spikes, checkpoints), keep_checkpoints, like=x)
    return spikes, checkpoints


class CompiledPRFSpikes(torch.autograd.Function):
    """Spikes (B, L, D) from ``x`` (B, L, D), the stacked dynamics (3, D) = (Delta, Re A, Im A), V_th and
    the surrogate's name."""

    @staticmethod
    def forward(ctx, x: Tensor, dynamics: Tensor, v_th: float, surrogate: str) -> Tensor:
        x, dynamics = x.contiguous(), dynamics.contiguous()
        threshold = torch.tensor([v_th], dtype=x.dtype)
        spikes, checkpoints = _spikes(x, dynamics, threshold, keep_checkpoints=True)
        ctx.save_for_backward(x, dynamics, threshold, checkpoints)
        ctx.code = SURROGATE_CODES[surrogate]
        ctx.parameters = ctx.needs_input_grad[1]
        return spikes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dspikes: Tensor):
        x, dynamics, threshold, checkpoints = ctx.saved_tensors
        dspikes = dspikes.to(x.dtype).contiguous()
        dx = dispatch.allocate(x.shape, x)
        row_sums = torch.zeros(x.shape[0], 3, x.shape[2], dtype=x.dtype)
        arrays = (x, dynamics, threshold, checkpoints, dspikes, dx, row_sums)
        run_rows(backward_kernel(), arrays, ctx.code, ctx.parameters, like=x)
        grad_dynamics = row_sums.sum(0, dtype=torch.float64).to(x.dtype) if ctx.parameters else None
        return dx, grad_dynamics, None, None


def prf_spikes_compiled(
    x: Tensor, log_delta: Tensor, theta: Tensor, tau: float, v_th: float, surrogate: str = "atan"
) -> Tensor:
    """Spikes (B, L, D) of real float32/float64 CPU inputs ``x`` (B, L, D), differentiable in x, log_Delta
    and theta through the ``surrogate`` (one with a compiled slope, ``SURROGATE_CODES``)."""
    if surrogate not in SURROGATE_CODES:
        raise ValueError(
            f"the compiled loop has no slope for the surrogate {surrogate!r}; it has {tuple(SURROGATE_CODES)}"
        )
    dynamics = torch.stack(prf_dynamics(log_delta, theta, tau))
    if torch.is_grad_enabled() and (x.requires_grad or dynamics.requires_grad):
        return CompiledPRFSpikes.apply(x, dynamics, float(v_th), surrogate)
    threshold = torch.tensor([v_th], dtype=x.dtype)
    return _spikes(x.detach().contiguous(), dynamics.detach(), threshold, keep_checkpoints=False)[0]


def prf_steps_compiled(
    x: Tensor, real: Tensor, imag: Tensor, log_delta: Tensor, theta: Tensor, tau: float, v_th: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Spikes (B, T, D) of a chunk ``x`` (B, T, D) of a stream whose membrane after the step before is
    ``real`` + i ``imag`` (B, D), and that membrane after the chunk, without autograd; float32/float64 on
    the CPU. The forward loop's operations are the step form's (``PRF.step``: ``p u - q r + Delta x``,
    ``q u + p r``, the same roundings), so a stream read in chunks equals one read step by step."""
    x = x.detach().contiguous()
    dynamics = torch.stack(prf_dynamics(log_delta.detach(), theta.detach(), tau))
    state = torch.stack([real.detach(), imag.detach()], 1).to(x.dtype).contiguous()
    threshold = torch.tensor([v_th], dtype=x.dtype)
    spikes = _spikes(x, dynamics, threshold, keep_checkpoints=False, state=state)[0]
    return spikes, state[:, 0].clone(), state[:, 1].clone()
