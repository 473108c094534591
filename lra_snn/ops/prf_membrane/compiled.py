"""Compiled CPU path of the PRF membrane (Parallel Resonate-and-Fire, arXiv 2410.03530, eq. 19;
docs/neurons.md, section 2): the complex recurrence ``z_t = A z_{t-1} + Delta x_t`` as numba loops over
time on its real and imaginary parts, forward and backward (``lra_snn.ops.host_compile``).

The per-channel dynamics ``Delta``, ``Re A``, ``Im A`` come from ``prf_dynamics`` (PyTorch, D values, so
autograd carries their gradients on to ``log_Delta`` and ``theta``). Each (batch row, channel block)
walks time in the (B, L, D) layout with the channels innermost, so the compiler vectorises over
channels; ``numba.prange`` splits the rows (and channel blocks, when there are fewer rows than threads)
across ``torch.get_num_threads()`` threads. The forward computes, in the input's dtype,
``Re z_t = (Re A Re z - Im A Im z) + Delta x_t`` and ``Im z_t = Re A Im z + Im A Re z``: PyTorch's
complex product and sum in its order (products rounded, then the sums; no fused multiply-add), so
``Re z`` equals the naive loop's bit for bit wherever PyTorch's vectorised complex product computes
it. Its scalar remainder (on an AVX-512 build the channels beyond a multiple of 8 for complex64 and
of 4 for complex128, the last channel alone excepted in complex64) is compiled with fused
multiply-adds for some elements, which no loop over the rounded products can reproduce: there the
two agree to rounding.

Backward, one pass in reverse time with the adjoint ``g = dL/dz`` (real and imaginary parts):
``g_t = dy_t + conj(A) g_{t+1}``, ``dx_t = Delta Re g_t``, and per channel ``dDelta = sum Re g_t x_t``,
``dA = sum conj(z_{t-1}) g_t`` (``d Re A = Re g Re z + Im g Im z``, ``d Im A = Im g Re z - Re g Im z``
at ``t - 1``). The sums over time are compensated (Kahan) per batch row in the input's dtype, then
summed over the rows in float64; ``Im z`` is kept from the forward for them (only when a parameter
needs a gradient).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.compiled_rows import compensated_add, copy_row, parallel_kernel, run_rows
from lra_snn.ops.prf_membrane.naive import prf_dynamics

CHUNK = 64  # steps between the forward's checkpoints of the state, recomputed chunk by chunk backward


def _forward_loop(
    x: np.ndarray,
    dynamics: np.ndarray,
    membrane: np.ndarray,
    checkpoints: np.ndarray,
    keep_checkpoints: bool,
    width: int,
) -> None:
    """Fill ``membrane`` = Re z (B, L, D) from ``x`` (B, L, D) and ``dynamics`` (3, D) = (Delta, Re A,
    Im A); when ``keep_checkpoints``, ``checkpoints`` (B, ceil(L / CHUNK), 2, D) = (Re, Im) of the state
    entering each chunk of ``CHUNK`` steps."""
    batch, length, channels = x.shape
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        size = stop - start
        delta, real_a, imag_a = dynamics[0, start:stop], dynamics[1, start:stop], dynamics[2, start:stop]
        real_state = np.zeros(size, x.dtype)
        imag_state = np.zeros(size, x.dtype)
        for t in range(length):
            if keep_checkpoints and t % CHUNK == 0:
                checkpoints[row, t // CHUNK, 0, start:stop] = real_state
                checkpoints[row, t // CHUNK, 1, start:stop] = imag_state
            x_t, real_t = x[row, t, start:stop], membrane[row, t, start:stop]
            for i in range(size):
                real_z, imag_z = real_state[i], imag_state[i]
                real_state[i] = (real_a[i] * real_z - imag_a[i] * imag_z) + delta[i] * x_t[i]
                imag_state[i] = real_a[i] * imag_z + imag_a[i] * real_z
                real_t[i] = real_state[i]


def _backward_loop(
    x: np.ndarray,
    dynamics: np.ndarray,
    checkpoints: np.ndarray,
    dy: np.ndarray,
    dx: np.ndarray,
    row_sums: np.ndarray,
    parameters: bool,
    width: int,
) -> None:
    """Fill ``dx`` (B, L, D) and, when ``parameters``, ``row_sums`` (B, 3, D): each row's sums over time
    of the gradients in (Delta, Re A, Im A), from the upstream ``dy`` (B, L, D).

    Chunk by chunk from the last: a forward walk over the chunk copies its ``dy`` (and ``x``) into
    buffers and recomputes its states from the checkpoint (the forward's operations, so the same
    values); the reverse walk then runs on the buffers, and ``dx`` is copied out forward (memory is
    only ever streamed forward)."""
    batch, length, channels = dy.shape
    blocks = -(-channels // width)
    chunks = -(-length // CHUNK)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        size = stop - start
        delta, real_a, imag_a = dynamics[0, start:stop], dynamics[1, start:stop], dynamics[2, start:stop]
        real_g = np.zeros(size, dy.dtype)  # Re g_t, then carried to step t - 1
        imag_g = np.zeros(size, dy.dtype)
        delta_sum, delta_lost = np.zeros(size, dy.dtype), np.zeros(size, dy.dtype)  # Kahan sums
        real_sum, real_lost = np.zeros(size, dy.dtype), np.zeros(size, dy.dtype)
        imag_sum, imag_lost = np.zeros(size, dy.dtype), np.zeros(size, dy.dtype)
        real_z = np.zeros((CHUNK + 1, size), dy.dtype)  # z entering the chunk, then after each of its steps
        imag_z = np.zeros((CHUNK + 1, size), dy.dtype)
        dy_chunk = np.empty((CHUNK, size), dy.dtype)
        dx_chunk = np.empty((CHUNK, size), dy.dtype)
        x_chunk = np.empty((CHUNK, size), dy.dtype)
        for chunk in range(chunks - 1, -1, -1):
            first = chunk * CHUNK
            steps = min(length, first + CHUNK) - first
            real_z[0] = checkpoints[row, chunk, 0, start:stop]
            imag_z[0] = checkpoints[row, chunk, 1, start:stop]
            for s in range(steps):
                copy_row(dy[row, first + s, start:stop], dy_chunk[s])
                if parameters:
                    copy_row(x[row, first + s, start:stop], x_chunk[s])
                    x_s, real_before, imag_before = x_chunk[s], real_z[s], imag_z[s]
                    real_after, imag_after = real_z[s + 1], imag_z[s + 1]
                    for i in range(size):
                        real_after[i] = (real_a[i] * real_before[i] - imag_a[i] * imag_before[i]) + delta[i] * x_s[i]
                    for i in range(size):
                        imag_after[i] = real_a[i] * imag_before[i] + imag_a[i] * real_before[i]
            for s in range(steps - 1, -1, -1):
                dy_s, dx_s = dy_chunk[s], dx_chunk[s]
                for i in range(size):
                    real_next, imag_next = real_g[i], imag_g[i]
                    real_g[i] = dy_s[i] + (real_a[i] * real_next + imag_a[i] * imag_next)
                    imag_g[i] = real_a[i] * imag_next - imag_a[i] * real_next
                for i in range(size):
                    dx_s[i] = delta[i] * real_g[i]
                if parameters:
                    x_s, real_before, imag_before = x_chunk[s], real_z[s], imag_z[s]
                    for i in range(size):
                        compensated_add(delta_sum, delta_lost, i, real_g[i] * x_s[i])
                    for i in range(size):
                        term = real_g[i] * real_before[i] + imag_g[i] * imag_before[i]
                        compensated_add(real_sum, real_lost, i, term)
                    for i in range(size):
                        term = imag_g[i] * real_before[i] - real_g[i] * imag_before[i]
                        compensated_add(imag_sum, imag_lost, i, term)
            for s in range(steps):
                copy_row(dx_chunk[s], dx[row, first + s, start:stop])
        if parameters:
            row_sums[row, 0, start:stop] = delta_sum
            row_sums[row, 1, start:stop] = real_sum
            row_sums[row, 2, start:stop] = imag_sum


forward_kernel = parallel_kernel(_forward_loop)
backward_kernel = parallel_kernel(_backward_loop)


def _membrane(x: Tensor, dynamics: Tensor, keep_checkpoints: bool) -> tuple[Tensor, Tensor]:
    """Re z (B, L, D) and the checkpoints ((B, ceil(L / CHUNK), 2, D) when ``keep_checkpoints``, else an
    unused (1, 1, 2, 1))."""
    batch, length, channels = x.shape
    membrane = torch.empty_like(x)
    shape = (batch, -(-length // CHUNK), 2, channels) if keep_checkpoints else (1, 1, 2, 1)
    checkpoints = x.new_empty(shape)
    run_rows(forward_kernel(), (x, dynamics, membrane, checkpoints), keep_checkpoints, like=x)
    return membrane, checkpoints


class CompiledPRFMembrane(torch.autograd.Function):
    """Re z (B, L, D) from ``x`` (B, L, D) and the stacked dynamics (3, D) = (Delta, Re A, Im A)."""

    @staticmethod
    def forward(ctx, x: Tensor, dynamics: Tensor) -> Tensor:
        x, dynamics = x.contiguous(), dynamics.contiguous()
        parameters = ctx.needs_input_grad[1]
        membrane, checkpoints = _membrane(x, dynamics, keep_checkpoints=parameters)
        ctx.save_for_backward(x, dynamics, checkpoints)
        ctx.parameters = parameters
        return membrane

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy: Tensor):
        x, dynamics, checkpoints = ctx.saved_tensors
        dy = dy.contiguous()
        dx = torch.empty_like(dy)
        row_sums = torch.zeros(dy.shape[0], 3, dy.shape[2], dtype=dy.dtype)
        run_rows(backward_kernel(), (x, dynamics, checkpoints, dy, dx, row_sums), ctx.parameters, like=dy)
        grad_dynamics = row_sums.sum(0, dtype=torch.float64).to(dy.dtype) if ctx.parameters else None
        return dx, grad_dynamics


def prf_membrane_compiled(x: Tensor, log_delta: Tensor, theta: Tensor, tau: float) -> Tensor:
    """``Re z`` (B, L, D) of real float32/float64 CPU inputs ``x`` (B, L, D), differentiable in x,
    log_Delta and theta."""
    dynamics = torch.stack(prf_dynamics(log_delta, theta, tau))
    if torch.is_grad_enabled() and (x.requires_grad or dynamics.requires_grad):
        return CompiledPRFMembrane.apply(x, dynamics)
    return _membrane(x.detach().contiguous(), dynamics.detach(), keep_checkpoints=False)[0]
