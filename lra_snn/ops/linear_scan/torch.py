"""PyTorch path of the first-order scan ``h_t = a_t * h_{t-1} + b_t`` over time (docs/kernels.md,
"Scan kernels in Triton: the known-good recipe").

The chunk-and-carry structure of the Triton kernels, in time linear in L: time is cut into chunks
of about sqrt(L) steps; inside every chunk at once, a loop over the chunk's positions runs the
recurrence from zero and the running decay products (each step one fused multiply-add over all
chunks); a scan of the same kind over the chunk ends carries the state across chunks; then each
step adds its decay product times the state entering its chunk. About four passes over memory in
all, where recursive doubling made log2(L) full-size passes; no division by cumulative products, so
it stays exact where a long product underflows. Backward is the reverse scan
``g_t = dy_t + a_{t+1} g_{t+1}``, ``db_t = g_t``, ``da_t = g_t h_{t-1}``; for complex tensors the
decay and state enter conjugated (``conj(a_{t+1})``, ``conj(h_{t-1})``), PyTorch's convention.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_MIN_CHUNK = 16  # below this length one loop over time; above, chunks of max(16, isqrt(L)) steps


def _loop(a: Tensor, b: Tensor) -> Tensor:
    """Inclusive scan along dim 1 of a short ``b`` by a loop over its steps."""
    h = torch.empty_like(b)
    h[:, 0] = b[:, 0]
    constant = a.shape[1] == 1
    for t in range(1, b.shape[1]):
        torch.addcmul(b[:, t], a[:, 0 if constant else t], h[:, t - 1], out=h[:, t])
    return h


def _pad_time(x: Tensor, steps: int, value: float) -> Tensor:
    """``x`` with ``steps`` more steps of ``value`` at the end of dim 1."""
    return torch.cat([x, x.new_full((x.shape[0], steps, *x.shape[2:]), value)], 1)


def _scan(a: Tensor, b: Tensor) -> Tensor:
    """Inclusive scan along dim 1 of ``b`` (h_0 = 0) by chunks and a carry; ``a`` broadcasts to ``b``
    with b's length in time, or size 1 there (a decay constant over time)."""
    length = b.shape[1]
    if length <= _MIN_CHUNK:
        return _loop(a, b)
    size = max(_MIN_CHUNK, math.isqrt(length))
    chunks = -(-length // size)
    constant = a.shape[1] == 1
    if chunks * size > length:  # padding steps pass the state through: a = 1, b = 0
        b = _pad_time(b, chunks * size - length, 0.0)
        a = a if constant else _pad_time(a, chunks * size - length, 1.0)
    rest = b.shape[2:]
    b = b.reshape(b.shape[0], chunks, size, *rest)
    h = torch.empty_like(b)
    h[:, :, 0] = b[:, :, 0]
    if constant:
        # decay products within a chunk are powers a^1 .. a^size, the same in every chunk
        powers = a.unsqueeze(2).expand(a.shape[0], 1, size, *a.shape[2:]).cumprod(2)
        for t in range(1, size):
            torch.addcmul(b[:, :, t], a, h[:, :, t - 1], out=h[:, :, t])
        products = powers
    else:
        a = a.reshape(a.shape[0], chunks, size, *a.shape[2:])
        products = torch.empty(torch.broadcast_shapes(a.shape, b.shape), dtype=a.dtype, device=a.device)
        products[:, :, 0] = a[:, :, 0]
        for t in range(1, size):
            torch.addcmul(b[:, :, t], a[:, :, t], h[:, :, t - 1], out=h[:, :, t])
            torch.mul(products[:, :, t - 1], a[:, :, t], out=products[:, :, t])
    carried = _scan(products[:, :, -1], h[:, :, -1])  # the state at the end of every chunk
    h[:, 1:] += (products if constant else products[:, 1:]) * carried[:, :-1].unsqueeze(2)
    return h.view(b.shape[0], chunks * size, *rest)[:, :length]


def _reduce_to(grad: Tensor, shape: torch.Size) -> Tensor:
    """Sum a broadcast gradient back to ``shape`` (the shape of the decay as given)."""
    while grad.dim() > len(shape):
        grad = grad.sum(0)
    for dim, size in enumerate(shape):
        if size == 1 and grad.shape[dim] != 1:
            grad = grad.sum(dim, keepdim=True)
    return grad


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor | None) -> Tensor:
        a_in = a if a.shape[1] == 1 else a.expand_as(b)
        b_in = b if h0 is None else torch.cat([b[:, :1] + a_in[:, :1] * h0.unsqueeze(1), b[:, 1:]], 1)
        h = _scan(a_in, b_in)
        ctx.a_shape = a.shape
        ctx.has_h0 = h0 is not None
        ctx.save_for_backward(a_in, h, h0 if h0 is not None else torch.empty(0))
        return h

    @staticmethod
    def backward(ctx, dy: Tensor):
        a, h, h0 = ctx.saved_tensors
        # g_t = dy_t + a_{t+1} g_{t+1}: a forward scan of the time-reversed gradient with the decay
        # shifted by one step (a constant decay needs no shift: g_L = 0 makes its last value moot).
        a = a.conj()
        a_next = a if a.shape[1] == 1 else torch.cat([a[:, 1:], torch.zeros_like(a[:, :1])], 1)
        g = _scan(a_next.flip(1), dy.flip(1)).flip(1)
        h_prev = torch.cat([h0.unsqueeze(1) if ctx.has_h0 else torch.zeros_like(h[:, :1]), h[:, :-1]], 1)
        da = _reduce_to(g * h_prev.conj(), ctx.a_shape) if ctx.needs_input_grad[0] else None
        dh0 = g[:, 0] * a[:, 0] if ctx.has_h0 and ctx.needs_input_grad[2] else None
        return da, g, dh0


def linear_scan_torch(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """Solve ``h_t = a_t * h_{t-1} + b_t`` along dim 1 of ``b`` (B, L, ...).

    ``a`` broadcasts to ``b`` (per step ``(B, L, D)`` or per channel ``(D,)``); ``h0`` is the
    state before the first step (B, ...), zero when omitted. Differentiable in a, b and h0.
    """
    if b.dim() < 2:
        raise ValueError(f"linear_scan expects (batch, length, ...) inputs, got shape {tuple(b.shape)}")
    if a.dim() < b.dim():
        a = a.reshape((1,) * (b.dim() - a.dim()) + tuple(a.shape))
    return _LinearScan.apply(a, b, h0)
