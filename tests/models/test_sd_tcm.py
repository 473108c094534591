"""SD-TCM block (docs/neurons.md, section 2) against a hand-written reference of its steps 1-4."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lra_snn.models.sd_tcm import AmplitudeLinear, SDTCMBlock
from lra_snn.neurons import build_neuron
from lra_snn.optim.groups import group_of, param_groups

D = 6


def prf_factory():
    """PRF neurons whose Delta and theta are large enough to fire on unit-scale inputs."""
    return lambda d_model: build_neuron("prf", d_model, theta_max=1.0, delta_min=0.3, delta_max=1.0)


def reference_prf_spikes(neuron, u: torch.Tensor) -> torch.Tensor:
    """Section 2 as a loop: z_t = A z_{t-1} + Delta x_t, A = exp(Delta(-1/tau + i theta)), s_t = [Re z_t >= 1]."""
    delta = neuron.log_delta.detach().double().exp()
    rotation = torch.exp(delta * torch.complex(torch.full_like(delta, -1 / neuron.tau), neuron.theta.detach().double()))
    z = torch.zeros(u.shape[0], u.shape[2], dtype=torch.complex128)
    spikes = []
    for t in range(u.shape[1]):
        z = rotation * z + delta * u[:, t]
        spikes.append((z.real >= neuron.v_th).double())
    return torch.stack(spikes, 1)


def reference_block(block: SDTCMBlock, u: torch.Tensor) -> torch.Tensor:
    """Steps 1-4 written out with the block's parameters (dropout off)."""
    s = reference_prf_spikes(block.temporal, u)  # 1
    if block.bidirectional:
        s = torch.cat([s, reference_prf_spikes(block.temporal_backward, u.flip(1)).flip(1)], -1)
    w1, b1 = block.token_mix.weight.detach(), block.token_mix.bias.detach()
    x = u + s @ w1.T + b1  # 2
    s2 = (x >= 0.5).double() * block.channel_mix.amplitude.detach().exp()  # 3
    w2, b2 = block.channel_mix.weight.detach(), block.channel_mix.bias.detach()
    return x + s2 @ w2.T + b2  # 4


@pytest.mark.parametrize("bidirectional", [False, True])
def test_block_matches_the_hand_written_steps(bidirectional):
    torch.manual_seed(0)
    block = SDTCMBlock(D, prf_factory(), bidirectional=bidirectional).double().eval()
    with torch.no_grad():
        block.channel_mix.amplitude.fill_(0.3)  # a trained amplitude, so its folding is exercised
    u = 2 * torch.randn(3, 25, D, dtype=torch.float64)
    out = block(u)
    expected = reference_block(block, u)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)
    rate = block.temporal.firing_rate.item()
    assert 0.02 < rate < 0.98, f"the check needs some spikes and some silences, got a firing rate of {rate}"
    assert 0.02 < block.spatial.firing_rate.item() < 0.98
    assert block.token_mix.in_features == (2 if bidirectional else 1) * D


def test_causal_block_ignores_the_future_and_bidirectional_block_sees_it():
    torch.manual_seed(1)
    u = 2 * torch.randn(2, 20, D, dtype=torch.float64)
    changed = u.clone()
    changed[:, 12:] += 3.0
    for bidirectional in (False, True):
        block = SDTCMBlock(D, prf_factory(), bidirectional=bidirectional).double().eval()
        before, after = block(u)[:, :12], block(changed)[:, :12]
        if bidirectional:
            assert not torch.equal(before, after)
        else:
            torch.testing.assert_close(before, after, rtol=0, atol=0)


def test_gradients_reach_neuron_dynamics_amplitude_and_weights():
    torch.manual_seed(2)
    block = SDTCMBlock(D, prf_factory(), bidirectional=True)
    block(2 * torch.randn(2, 16, D)).square().sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_amplitude_and_neuron_dynamics_are_in_the_dynamics_group():
    block = SDTCMBlock(D, lambda d_model: build_neuron("prf", d_model))
    assert block.channel_mix.amplitude.item() == 0.0  # init 0: unit spike amplitude
    dynamics = {name for name, p in block.named_parameters() if group_of(p) == "dynamics"}
    assert dynamics == {"temporal.log_delta", "temporal.log_theta", "channel_mix.amplitude"}
    groups = {g["name"]: g for g in param_groups(block, lr=0.005, weight_decay=0.05, dynamics_lr=0.001)}
    assert groups["dynamics"]["lr"] == 0.001 and groups["dynamics"]["weight_decay"] == 0.0
    assert any(p is block.channel_mix.amplitude for p in groups["dynamics"]["params"])


def test_amplitude_linear_equals_linear_of_scaled_spikes():
    torch.manual_seed(3)
    layer = AmplitudeLinear(4, 3)
    with torch.no_grad():
        layer.amplitude.fill_(-0.7)
    spikes = (torch.rand(5, 4) > 0.5).float()
    torch.testing.assert_close(layer(spikes), nn.functional.linear(spikes * math.exp(-0.7), layer.weight, layer.bias))
