"""The gated spiking unit of Binary S4D + GSU (docs/neurons.md, section 7): the formula by hand, where
the gradients go, the step form, and the block that carries it."""

from __future__ import annotations

import pytest
import torch

from lra_snn.models.blocks import S4DBlock
from lra_snn.models.gsu import GatedSpikingUnit


def unit(d: int, seed: int = 0) -> GatedSpikingUnit:
    torch.manual_seed(seed)
    return GatedSpikingUnit(d).double()


def test_output_is_the_product_of_the_two_additive_paths_by_hand():
    gsu = unit(2)
    with torch.no_grad():
        gsu.weight.copy_(torch.tensor([[2.0, -0.1], [-1.0, 0.5]], dtype=torch.float64))
        gsu.bias_spikes.copy_(torch.tensor([0.5, -0.5], dtype=torch.float64))
        gsu.bias_values.copy_(torch.tensor([1.0, 0.0], dtype=torch.float64))
    y = torch.tensor([[[3.0, -0.3]]], dtype=torch.float64)
    # Ter(y): threshold 0.15 * 3 = 0.45 -> (1, 0); Ter(W): threshold 0.15 * 2 = 0.3 -> [[1, 0], [-1, 1]]
    # spikes path: (1, 0) W + b = (2.5, -0.6); values path: y Ter(W) + c = (3 + 0.3 + 1, -0.3 + 0) = (4.3, -0.3)
    expected = torch.tensor([[[2.5 * 4.3, -0.6 * -0.3]]], dtype=torch.float64)
    torch.testing.assert_close(gsu(y), expected)
    assert torch.equal(gsu.ternary_weight(), torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64))


def test_gradient_reaches_y_through_the_identity_path_and_w_through_the_spike_path():
    gsu = unit(4, seed=1)
    y = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    out = gsu(y)
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    spikes, ternary_w = gsu.spike(y.detach()), gsu.ternary_weight()
    gate = spikes @ gsu.weight.detach() + gsu.bias_spikes.detach()
    values = y.detach() @ ternary_w + gsu.bias_values.detach()
    torch.testing.assert_close(y.grad, (weight * gate) @ ternary_w.T)  # d values / d y = Ter(W)^T only
    grad_w = torch.einsum("bli,blj->ij", spikes, weight * values)  # d gate / d W = Ter(y) only
    torch.testing.assert_close(gsu.weight.grad, grad_w)


def test_one_step_equals_the_sequence_form_at_that_step():
    gsu = unit(3, seed=2)
    y = torch.randn(2, 7, 3, dtype=torch.float64)
    whole = gsu(y)
    for t in range(7):
        torch.testing.assert_close(gsu(y[:, t]), whole[:, t], rtol=0, atol=0)


def test_gsu_block_streams_like_its_parallel_form():
    torch.manual_seed(3)
    block = S4DBlock(4, d_state=4, bidirectional=False, mixer="gsu").double().eval()
    x = torch.randn(2, 9, 4, dtype=torch.float64)
    parallel = block(x)
    state = block.init_state(2, dtype=torch.float64)
    steps = []
    for x_t in x.unbind(1):
        y_t, state = block.step(x_t, state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), parallel, rtol=1e-9, atol=1e-10)


def test_unknown_mixer_is_refused_with_the_config_key():
    with pytest.raises(ValueError, match=r"model\.encoder\.layer\.mixer"):
        S4DBlock(4, mixer="mlp")
