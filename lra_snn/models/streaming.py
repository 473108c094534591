"""Streaming inference: a trained encoder run one time step at a time, in memory constant in L.

``StreamingEncoder`` wraps a ``lra_snn.models.backbone.SequenceEncoder`` and computes the same
features from each block's step form (``init_state`` / ``step``: the S4D recurrence
``x_t = A_bar x_{t-1} + B_bar u_t``, ``y_t = 2 Re(C x_t) + D u_t`` of ``lra_snn.models.s4d``, and
the neurons' step forms of ``lra_snn.neurons.base``). Its state is a fixed set of (B, ...) tensors
per block whose size does not depend on the sequence length (``state_numel``). Padding is handled
as in the parallel form: the input of every block and the output are zeroed after each sequence's
true length. ``pooled`` pools while it goes (a running sum for the mean, the step at the true length
for "last"), so a classifier never holds the (B, L, D) features.

Only a causal model with a step form for every part streams. ``unstreamable_parts`` names the
others: bidirectional layers (they read later steps), fixed-length neurons (PSN and masked PSN are
built for exactly T steps), non-causal neurons, and block types without ``init_state``/``step``.
Streaming is an inference mode: BatchNorm uses its running statistics (``eval()``), so each step is
normalised on its own.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lra_snn.models.backbone import ResidualBlock, SequenceEncoder


class StreamingError(ValueError):
    """The model cannot run step by step; the message names each part and the reason."""


def unstreamable_parts(encoder: SequenceEncoder) -> list[str]:
    """Each part of ``encoder`` that keeps it from streaming, as "name (reason)"."""
    found = []
    for name, module in encoder.named_modules():
        if getattr(module, "bidirectional", False) is True:
            found.append(
                f"{name} (bidirectional: reads later steps; train with model.encoder.layer.bidirectional=false)"
            )
        elif getattr(module, "fixed_length", False) is True:
            found.append(
                f"{name} ({type(module).__name__} is built for a fixed length T={getattr(module, 'T', '?')}: its "
                "weights index absolute time steps; use sliding_psn, which streams at any length)"
            )
        elif getattr(module, "causal", True) is False:
            found.append(f"{name} ({type(module).__name__} mixes all steps; use a causal neuron)")
    for index, block in enumerate(encoder.blocks):
        assert isinstance(block, ResidualBlock)
        if not (hasattr(block.layer, "init_state") and hasattr(block.layer, "step")):
            found.append(f"blocks.{index}.layer ({type(block.layer).__name__} has no step form: init_state/step)")
    return found


def state_numel(state: Any) -> int:
    """Number of tensor elements held in a (nested) streaming state."""
    if isinstance(state, Tensor):
        return state.numel()
    if isinstance(state, (tuple, list)):
        return sum(state_numel(item) for item in state)
    return 0


def _norm_step(norm: nn.Module, x: Tensor) -> Tensor:
    """A ``SequenceNorm`` (or identity) on one step (B, D), as a length-1 sequence."""
    return norm(x.unsqueeze(1)).squeeze(1)


def _residual_step(block: ResidualBlock, x: Tensor, state: Any) -> tuple[Tensor, Any]:
    """One step of ``ResidualBlock``: pre-norm ``x + layer(norm(x))`` or post-norm ``norm(x + layer(x))``."""
    layer: Any = block.layer  # has a step form (checked by unstreamable_parts)
    if block.prenorm:
        y, state = layer.step(_norm_step(block.norm, x), state)
        return x + block.dropout(y), state
    y, state = layer.step(x, state)
    return _norm_step(block.norm, x + block.dropout(y)), state


class StreamingEncoder(nn.Module):
    """``encoder`` run step by step: the same (B, L, D) features (``forward``) or pooled (B, D) ones
    (``pooled``), from a state of constant size; refuses, naming the reasons, an encoder that cannot stream."""

    def __init__(self, encoder: SequenceEncoder) -> None:
        super().__init__()
        parts = unstreamable_parts(encoder)
        if parts:
            raise StreamingError("this model cannot run step by step: " + "; ".join(parts))
        self.inner = encoder
        self.d_model = encoder.d_model

    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> list:
        """Every block's state before the first step."""
        layers: list[Any] = [block.layer for block in self.inner.blocks]
        return [layer.init_state(batch, device, dtype) for layer in layers]

    def step(self, inputs_t: Tensor, keep_t: Tensor, state: list) -> tuple[Tensor, list]:
        """Features (B, D) of one step: ``inputs_t`` (B,) tokens or (B, d_input) values, ``keep_t`` (B,)
        true where the step lies within the sequence (zero features past its end, as the parallel form)."""
        if self.inner.training:
            raise StreamingError("streaming is an inference mode: call .eval() first (BatchNorm, dropout)")
        x = self.inner.encoder(inputs_t)
        keep = keep_t.unsqueeze(-1).to(x.dtype)
        next_state = []
        for block, block_state in zip(self.inner.blocks, state):
            assert isinstance(block, ResidualBlock)
            x, block_state = _residual_step(block, x * keep, block_state)
            next_state.append(block_state)
        return _norm_step(self.inner.final_norm, x) * keep, next_state

    def _steps(self, inputs: Tensor, lengths: Tensor):
        """(t, features_t) for every step of the batch, from a fresh state."""
        dtype = next(self.inner.parameters()).dtype
        state = self.init_state(inputs.shape[0], inputs.device, dtype)
        for t in range(inputs.shape[1]):
            features, state = self.step(inputs[:, t], lengths > t, state)
            yield t, features

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Features (B, L, D) of every step (for per-step heads, e.g. a language model)."""
        return torch.stack([features for _, features in self._steps(inputs, lengths)], 1)

    def pooled(self, inputs: Tensor, lengths: Tensor, kind: str) -> Tensor:
        """Features pooled over the true length without keeping them: "mean" (running sum / length) or "last"."""
        total = last = None
        for t, features in self._steps(inputs, lengths):
            if kind == "mean":
                total = features if total is None else total + features
            elif kind == "last":
                at_end = (lengths.clamp_min(1) - 1 == t).unsqueeze(-1)
                last = torch.where(at_end, features, torch.zeros_like(features) if last is None else last)
            else:
                raise ValueError(f"unknown pooling {kind!r}; choose mean or last")
        if kind == "mean":
            assert total is not None
            return total / lengths.clamp_min(1)[:, None].to(total.dtype)
        assert last is not None
        return last
