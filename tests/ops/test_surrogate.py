"""Surrogate spike functions (docs/neurons.md, "Surrogate"): forward is the Heaviside step; backward
equals the analytic surrogate and the central finite difference of the smooth function whose
derivative it is."""

from __future__ import annotations

import math

import pytest
import torch

from lra_snn.ops.surrogate import SURROGATES, ATanSpike, RectSpike, TriangleSpike, spike

ALPHA = 2.0  # ATan's default
WIDTH = 1.0  # rect's default


def atan_primitive(v, alpha=ALPHA):
    return torch.atan(math.pi * alpha * v / 2) / math.pi + 0.5


def triangle_primitive(v):
    rising = (1 + v).clamp(0, 1) ** 2 / 2
    falling = 1 - (1 - v).clamp(0, 1) ** 2 / 2
    return torch.where(v < 0, rising, falling)


def rect_primitive(v, width=WIDTH):
    return (v / width + 0.5).clamp(0, 1)


PRIMITIVES = {"atan": atan_primitive, "triangle": triangle_primitive, "rect": rect_primitive}
FORMULAS = {
    "atan": lambda v: (ALPHA / 2) / (1 + (math.pi * ALPHA * v / 2) ** 2),
    "triangle": lambda v: (1 - v.abs()).clamp_min(0),
    "rect": lambda v: (v.abs() <= WIDTH / 2).to(v.dtype) / WIDTH,
}
KINKS = {"atan": [], "triangle": [-1.0, 0.0, 1.0], "rect": [-WIDTH / 2, WIDTH / 2]}


def sample_points(surrogate, step):
    """Points in [-2, 2] (float64), none within 2*step of a kink of the surrogate."""
    v = torch.linspace(-2.0, 2.0, 401, dtype=torch.float64) + 1e-3
    for kink in KINKS[surrogate]:
        v = v[(v - kink).abs() > 2 * step]
    return v


def autograd_slope(v, surrogate):
    v = v.clone().requires_grad_()
    (slope,) = torch.autograd.grad(spike(v, surrogate).sum(), v)
    return slope


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_forward_is_the_heaviside_step_with_h0_equal_one(surrogate):
    v = torch.tensor([-1.5, -1e-12, 0.0, 1e-12, 3.0], dtype=torch.float64)
    out = spike(v, surrogate)
    assert out.dtype == v.dtype
    assert out.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_backward_matches_the_analytic_formula(surrogate):
    v = sample_points(surrogate, 0.0)
    torch.testing.assert_close(autograd_slope(v, surrogate), FORMULAS[surrogate](v), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_backward_matches_a_finite_difference_of_the_primitive(surrogate):
    step = 1e-6
    v = sample_points(surrogate, step)
    primitive = PRIMITIVES[surrogate]
    central = (primitive(v + step) - primitive(v - step)) / (2 * step)
    assert central.abs().max() > 0.5
    torch.testing.assert_close(autograd_slope(v, surrogate), central, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_primitive_runs_from_zero_to_one(surrogate):
    """The primitives are smooth versions of the step: 0 far below, 1 far above, 0.5 at 0."""
    primitive = PRIMITIVES[surrogate]
    ends = primitive(torch.tensor([-1e3, 0.0, 1e3], dtype=torch.float64))
    torch.testing.assert_close(ends, torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64), rtol=0, atol=1e-3)


def test_backward_scales_the_incoming_gradient():
    v = torch.tensor([-0.3, 0.2, 0.7], dtype=torch.float64, requires_grad=True)
    upstream = torch.tensor([2.0, -3.0, 0.5], dtype=torch.float64)
    (slope,) = torch.autograd.grad(spike(v, "atan"), v, upstream)
    torch.testing.assert_close(slope, upstream * FORMULAS["atan"](v.detach()))


@pytest.mark.parametrize("function, args", [(ATanSpike, (1.0,)), (TriangleSpike, ()), (RectSpike, (0.5,))])
def test_autograd_functions_take_their_shape_parameter(function, args):
    v = torch.linspace(-1.0, 1.0, 9, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(function.apply(v, *args).sum(), v)
    if function is ATanSpike:
        expected = 0.5 / (1 + (math.pi * 0.5 * v.detach()) ** 2)
    elif function is RectSpike:
        expected = (v.detach().abs() <= 0.25).double() / 0.5
    else:
        expected = FORMULAS["triangle"](v.detach())
    torch.testing.assert_close(slope, expected)


def test_unknown_surrogate_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="atan"):
        spike(torch.zeros(3), "sigmoid")
