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

The fused PRF spikes (``lra_snn.ops.prf_spikes.compiled``) run the same recurrence on the same
functions: the step (``rotate``) and the forward's checkpoints (``checkpoint``), and backward a task's
buffers (``backward_buffers``), the replay of a chunk from its checkpoint (``replay_chunk``) and the
reverse walk over it (``adjoint_chunk``). Each is inlined into the loops that call it (numba's
``inline="always"``), so the compiler sees the buffers' separate allocations and vectorises the
functions' loops as the callers' own.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.compiled_rows import compensated_add, copy_row, parallel_kernel, run_rows
from lra_snn.ops.host_compile import host_function
from lra_snn.ops.prf_membrane.naive import prf_dynamics

CHUNK = 64  # steps between the forward's checkpoints of the state, recomputed chunk by chunk backward


@host_function(inline="always")
def rotate(
    x_t: np.ndarray,
    dynamics: np.ndarray,
    real_z: np.ndarray,
    imag_z: np.ndarray,
    real_next: np.ndarray,
    imag_next: np.ndarray,
) -> None:
    """One step ``z_t = A z_{t-1} + Delta x_t`` (eq. 19) on a channel block: ``(real_next, imag_next)`` =
    z_t from ``(real_z, imag_z)`` = z_{t-1}, the block's inputs ``x_t`` and ``dynamics`` (3, size) =
    (Delta, Re A, Im A), in PyTorch's order. An output may be its input's array (each element is read
    before it is written)."""
    delta, real_a, imag_a = dynamics[0], dynamics[1], dynamics[2]
    for i in range(x_t.shape[0]):
        real, imag = real_z[i], imag_z[i]
        real_next[i] = (real_a[i] * real - imag_a[i] * imag) + delta[i] * x_t[i]
        imag_next[i] = real_a[i] * imag + imag_a[i] * real


@host_function(inline="always")
def checkpoint(
    checkpoints: np.ndarray, row: int, chunk: int, start: int, real_state: np.ndarray, imag_state: np.ndarray
) -> None:
    """Save the state (Re, Im) of the channel block ``start:`` of ``row`` entering ``chunk`` into
    ``checkpoints`` (B, ceil(L / CHUNK), 2, D)."""
    stop = start + real_state.shape[0]
    copy_row(real_state, checkpoints[row, chunk, 0, start:stop])
    copy_row(imag_state, checkpoints[row, chunk, 1, start:stop])


@host_function(inline="always")
def backward_buffers(size: int, like: np.ndarray) -> tuple[np.ndarray, ...]:
    """A backward task's buffers in ``like``'s dtype: the adjoint g (Re, Im) and the Kahan sums and
    their lost rounding (in Delta, Re A, Im A), zero; z entering a chunk and after each of its steps
    (Re and Im, (CHUNK + 1, size) each); the chunk's upstream gradient of Re z, its dx and its x."""
    dtype = like.dtype
    adjoint = np.zeros((2, size), dtype)
    sums, lost = np.zeros((3, size), dtype), np.zeros((3, size), dtype)
    real_z, imag_z = np.zeros((CHUNK + 1, size), dtype), np.zeros((CHUNK + 1, size), dtype)
    upstream, dx_chunk, x_chunk = (
        np.empty((CHUNK, size), dtype),
        np.empty((CHUNK, size), dtype),
        np.empty((CHUNK, size), dtype),
    )
    return adjoint, sums, lost, real_z, imag_z, upstream, dx_chunk, x_chunk


@host_function(inline="always")
def replay_chunk(
    x: np.ndarray,
    checkpoints: np.ndarray,
    row: int,
    chunk: int,
    start: int,
    dynamics: np.ndarray,
    x_chunk: np.ndarray,
    real_z: np.ndarray,
    imag_z: np.ndarray,
) -> None:
    """The forward again over ``chunk`` of ``row`` on the channel block ``start:`` (the forward's
    operations, so the same values): its ``x`` rows copied to ``x_chunk``, and ``real_z[s], imag_z[s]``
    = z entering its step ``s`` (and after its last), from the checkpoint."""
    stop = start + x_chunk.shape[1]
    first = chunk * CHUNK
    copy_row(checkpoints[row, chunk, 0, start:stop], real_z[0])
    copy_row(checkpoints[row, chunk, 1, start:stop], imag_z[0])
    for s in range(min(x.shape[1] - first, CHUNK)):
        copy_row(x[row, first + s, start:stop], x_chunk[s])
        rotate(x_chunk[s], dynamics, real_z[s], imag_z[s], real_z[s + 1], imag_z[s + 1])


@host_function(inline="always")
def adjoint_chunk(
    dynamics: np.ndarray,
    steps: int,
    upstream: np.ndarray,
    dx_chunk: np.ndarray,
    x_chunk: np.ndarray,
    real_z: np.ndarray,
    imag_z: np.ndarray,
    adjoint: np.ndarray,
    sums: np.ndarray,
    lost: np.ndarray,
    parameters: bool,
) -> None:
    """The reverse walk over a chunk's ``steps`` steps: the adjoint ``g_t = dy_t + conj(A) g_{t+1}``
    (``adjoint``, carried across chunks) from ``upstream`` = dy, the gradient of Re z; ``dx_t = Delta
    Re g_t`` into ``dx_chunk``; when ``parameters``, the Kahan sums (``sums``, ``lost``) of the gradients
    in (Delta, Re A, Im A) from the replayed ``x_chunk`` and states."""
    delta, real_a, imag_a = dynamics[0], dynamics[1], dynamics[2]
    real_g, imag_g = adjoint[0], adjoint[1]
    delta_sum, real_sum, imag_sum = sums[0], sums[1], sums[2]
    delta_lost, real_lost, imag_lost = lost[0], lost[1], lost[2]
    size = delta.shape[0]
    for s in range(steps - 1, -1, -1):
        dy_s, dx_s = upstream[s], dx_chunk[s]
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
        block = dynamics[:, start:stop].copy()
        real_state = np.zeros(stop - start, x.dtype)
        imag_state = np.zeros(stop - start, x.dtype)
        for t in range(length):
            if keep_checkpoints and t % CHUNK == 0:
                checkpoint(checkpoints, row, t // CHUNK, start, real_state, imag_state)
            rotate(x[row, t, start:stop], block, real_state, imag_state, real_state, imag_state)
            copy_row(real_state, membrane[row, t, start:stop])


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

    Chunk by chunk from the last: a forward walk over the chunk copies its ``dy`` into a buffer and, when
    ``parameters``, replays its states from the checkpoint (``replay_chunk``); the reverse walk then runs
    on the buffers (``adjoint_chunk``), and ``dx`` is copied out forward (memory is only ever streamed
    forward)."""
    batch, length, channels = dy.shape
    blocks = -(-channels // width)
    for task in numba.prange(batch * blocks):
        row, start = task // blocks, (task % blocks) * width
        stop = min(channels, start + width)
        block = dynamics[:, start:stop].copy()
        adjoint, sums, lost, real_z, imag_z, upstream, dx_chunk, x_chunk = backward_buffers(stop - start, dy)
        for chunk in range(-(-length // CHUNK) - 1, -1, -1):
            first = chunk * CHUNK
            steps = min(length, first + CHUNK) - first
            for s in range(steps):
                copy_row(dy[row, first + s, start:stop], upstream[s])
            if parameters:
                replay_chunk(x, checkpoints, row, chunk, start, block, x_chunk, real_z, imag_z)
            adjoint_chunk(block, steps, upstream, dx_chunk, x_chunk, real_z, imag_z, adjoint, sums, lost, parameters)
            for s in range(steps):
                copy_row(dx_chunk[s], dx[row, first + s, start:stop])
        if parameters:
            row_sums[row, :, start:stop] = sums


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
