"""SpikingSSMs' SS4D layer options of the S4D block (arXiv 2408.14909): a trainable B, the learnable
per-channel threshold that divides the S4D output before the neuron, and dropout tied over time."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lra_snn.models.backbone import ResidualBlock, SequenceEncoder
from lra_snn.models.blocks import S4DBlock
from lra_snn.models.dropout import TiedDropout
from lra_snn.models.s4d import S4DKernel
from lra_snn.neurons import build_neuron
from lra_snn.optim.groups import group_of


def test_a_trainable_b_starts_at_one_trains_as_dynamics_and_multiplies_c():
    torch.manual_seed(0)
    folded = S4DKernel(channels=3, d_state=8, init="lin").double()
    torch.manual_seed(0)
    trainable = S4DKernel(channels=3, d_state=8, init="lin", trainable_B=True).double()
    assert folded.B is None and group_of(trainable.B) == "dynamics"
    assert torch.equal(torch.view_as_complex(trainable.B), torch.ones(3, 4, dtype=torch.complex128))
    torch.testing.assert_close(trainable(21), folded(21), rtol=0, atol=0)  # B = 1: the same kernel
    with torch.no_grad():
        b = torch.randn(3, 4, dtype=torch.complex128)
        trainable.B.copy_(torch.view_as_real(b))
        folded.C.copy_(torch.view_as_real(torch.view_as_complex(folded.C) * b))
    torch.testing.assert_close(trainable(21), folded(21), rtol=1e-12, atol=1e-12)  # only C B matters
    trainable(21).sum().backward()
    assert trainable.B.grad is not None and trainable.B.grad.abs().sum() > 0


def recording_neuron(seen: list):
    """A neuron factory whose LIF records the input it sees."""

    def factory(d_model: int):
        neuron = build_neuron("lif", d_model)
        neuron.register_forward_hook(lambda _module, inputs, _output: seen.append(inputs[0].detach()))
        return neuron

    return factory


def test_the_learnable_threshold_divides_what_the_neuron_sees_in_every_form():
    torch.manual_seed(1)
    seen: list = []
    block = S4DBlock(4, d_state=4, init="lin", neuron=recording_neuron(seen), learnable_vth=True).double()
    assert group_of(block.ln_vth) == "default" and torch.equal(block.ln_vth, torch.zeros(4, dtype=torch.float64))
    with torch.no_grad():
        block.ln_vth.copy_(torch.tensor([0.0, 0.5, -1.0, 2.0]))
    x = torch.randn(2, 9, 4, dtype=torch.float64)
    y = block(x)
    torch.testing.assert_close(seen[0], block.ssm(x) / block.ln_vth.exp())
    state, steps = block.init_state(2, dtype=x.dtype), []
    for x_t in x.unbind(1):
        y_t, state = block.step(x_t, state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, rtol=1e-10, atol=1e-10)
    assert S4DBlock(4, neuron=recording_neuron([])).ln_vth is None


def test_tied_dropout_masks_a_channel_for_the_whole_sequence():
    torch.manual_seed(2)
    dropout, x = TiedDropout(0.5), torch.ones(3, 11, 6)
    out = dropout.train()(x)
    assert torch.equal(out, out[:, :1].expand_as(out))  # one mask per (sequence, channel)
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(dropout.eval()(x), x)
    with pytest.raises(ValueError, match=r"in \[0, 1\), got 1.0"):
        TiedDropout(1.0)


def test_the_kernel_defaults_and_the_smallest_state():
    """64 states (32 modes) and dt in [1e-3, 1e-1] by default; d_state = 2 (one mode) is the smallest."""
    torch.manual_seed(0)
    kernel = S4DKernel(channels=200)
    assert kernel.C.shape[1] == 32 and kernel.B is None
    dt = kernel.log_dt.exp()
    assert 1e-3 <= dt.min() < 2e-3 and 0.08 < dt.max() <= 1e-1
    assert S4DKernel(channels=1, d_state=2, init="lin").C.shape[1] == 1


def test_tied_dropout_draws_a_mask_per_sequence_and_defaults_to_none():
    torch.manual_seed(0)
    x = torch.ones(64, 5, 4)
    masks = TiedDropout(0.5).train()(x)[:, 0]  # (sequences, channels)
    assert len({tuple(mask.tolist()) for mask in masks}) > 1  # not one mask shared by the batch
    assert torch.equal(TiedDropout().train()(x), x)


def test_the_backbone_and_the_block_tie_their_dropout_when_asked():
    encoder = SequenceEncoder(8, 2, lambda d_model: nn.Identity(), vocab_size=5, dropout=0.1, tie_dropout=True)
    block = S4DBlock(8, dropout=0.1, tie_dropout=True)
    assert all(isinstance(b.dropout, TiedDropout) for b in encoder.blocks) and isinstance(block.dropout, TiedDropout)
    assert isinstance(ResidualBlock(nn.Identity(), 8, "batch", False, 0.1).dropout, nn.Dropout)
