"""PyTorch path of the first-order scan ``h_t = a_t * h_{t-1} + b_t`` over time (docs/kernels.md,
"Scan kernels in Triton: the known-good recipe").

The associative scan: pairs ``(a, b)`` combine as ``(a1*a2, a2*b1 + b2)``; here
by recursive doubling (log2 L passes, no Python loop over time, no division by cumulative
products, so it stays exact where a long product underflows). Backward is the reverse scan
``g_t = dy_t + a_{t+1} g_{t+1}``, ``db_t = g_t``, ``da_t = g_t h_{t-1}``; for complex tensors the
decay and state enter conjugated (``conj(a_{t+1})``, ``conj(h_{t-1})``), PyTorch's convention.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _doubling_scan(a: Tensor, b: Tensor) -> Tensor:
    """Inclusive scan along dim 1 of ``b`` (h_0 = 0); ``a`` has b's shape, or size 1 in time
    (a decay constant over time, whose products are then just powers)."""
    length = b.shape[1]
    constant = a.shape[1] == 1
    offset = 1
    while offset < length:
        decay = a if constant else a[:, offset:]
        b = torch.cat([b[:, :offset], torch.addcmul(b[:, offset:], decay, b[:, :-offset])], 1)
        if offset * 2 < length:  # the last pass needs no further decay products
            a = a * a if constant else torch.cat([a[:, :offset], a[:, offset:] * a[:, :-offset]], 1)
        offset *= 2
    return b


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
        h = _doubling_scan(a_in, b_in)
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
        g = _doubling_scan(a_next.flip(1), dy.flip(1)).flip(1)
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

