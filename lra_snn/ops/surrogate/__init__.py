"""Spike functions with surrogate gradients, for the PyTorch paths (docs/neurons.md, "Surrogate").

Forward is the Heaviside step ``H(v) = [v >= 0]``; backward replaces its derivative by
ATan ``(alpha/2) / (1 + (pi*alpha*v/2)^2)`` (Fang et al., "Incorporating learnable membrane time
constant", ICCV 2021, SpikingJelly's default with alpha = 2), triangle ``max(0, 1 - |v|)`` or
rect (straight-through: 1 inside ``|v| <= width/2``, scaled by ``1/width``). ``IntegerSpike`` is
the DSN's ``clip(round(h), 0, N)`` with a straight-through gradient (Huang et al., arXiv
2602.01133). The Triton kernels take the same surrogates (defaults alpha = 2, width 1) from
``lra_snn.ops.surrogate.triton``, which alone imports triton.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class ATanSpike(torch.autograd.Function):
    """H(v) with the ATan surrogate (SpikingJelly's default, alpha = 2)."""

    @staticmethod
    def forward(ctx, v: Tensor, alpha: float = 2.0) -> Tensor:
        ctx.save_for_backward(v)
        ctx.alpha = alpha
        return (v >= 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (v,) = ctx.saved_tensors
        a = ctx.alpha
        return grad * (a / 2) / (1 + (math.pi * a / 2 * v) ** 2), None


class TriangleSpike(torch.autograd.Function):
    """H(v) with the triangle surrogate ``max(0, 1 - |v|)``."""

    @staticmethod
    def forward(ctx, v: Tensor) -> Tensor:
        ctx.save_for_backward(v)
        return (v >= 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (v,) = ctx.saved_tensors
        return grad * (1 - v.abs()).clamp_min(0)


class RectSpike(torch.autograd.Function):
    """H(v) with the rectangular (straight-through) surrogate of width ``width``."""

    @staticmethod
    def forward(ctx, v: Tensor, width: float = 1.0) -> Tensor:
        ctx.save_for_backward(v)
        ctx.width = width
        return (v >= 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (v,) = ctx.saved_tensors
        w = ctx.width
        return grad * (v.abs() <= w / 2).to(grad.dtype) / w, None


class IntegerSpike(torch.autograd.Function):
    """``clip(round(h), 0, N)`` (halves round up), gradient 1 where ``0 <= h <= N`` (straight-through)."""

    @staticmethod
    def forward(ctx, h: Tensor, n_levels: int) -> Tensor:
        ctx.save_for_backward(h)
        ctx.n_levels = n_levels
        return torch.floor(h + 0.5).clamp(0, n_levels)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (h,) = ctx.saved_tensors
        inside = (h >= 0) & (h <= ctx.n_levels)
        return grad * inside.to(grad.dtype), None


SURROGATES = ("atan", "triangle", "rect")


def spike(v: Tensor, surrogate: str = "atan") -> Tensor:
    """Heaviside of ``v`` (spike where v >= 0) with the named surrogate gradient."""
    if surrogate == "atan":
        return ATanSpike.apply(v)
    if surrogate == "triangle":
        return TriangleSpike.apply(v)
    if surrogate == "rect":
        return RectSpike.apply(v)
    raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {SURROGATES}")


def surrogate_derivative(v: Tensor, surrogate: str) -> Tensor:
    """The surrogate gradient ``dH/dv`` of ``spike(v, surrogate)`` at ``v`` (no graph kept)."""
    with torch.enable_grad():
        leaf = v.detach().requires_grad_()
        (slope,) = torch.autograd.grad(spike(leaf, surrogate).sum(), leaf)
    return slope
