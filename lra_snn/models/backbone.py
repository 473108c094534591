"""The shared sequence backbone (docs/recipes.md, "Shared training conventions").

encoder (Embedding for tokens, Linear for real-valued inputs) -> n_layers residual blocks with
BatchNorm or LayerNorm, pre- or post-norm, dropout (per element, or with ``tie_dropout`` one mask per
channel over the whole sequence, as SpikingSSMs' model). Heads (pooling + classifier, language-model
softmax) belong to the task (``lra_snn.tasks``), so every zoo model serves every task.
Padded positions are zeroed before every block, so bidirectional blocks never see padding and
a sequence's output does not depend on how much padding its batch needed (at eval time; in
training, BatchNorm batch statistics include padded positions, as in the S4 code base).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lra_snn.models.dropout import dropout as make_dropout

NORMS = ("batch", "layer", "none")


class SequenceNorm(nn.Module):
    """BatchNorm over (batch, time) per channel, LayerNorm per step, or identity, on (B, L, D)."""

    def __init__(self, d_model: int, kind: str) -> None:
        super().__init__()
        if kind not in NORMS:
            raise ValueError(f"unknown norm {kind!r}; choose one of {NORMS}")
        self.kind = kind
        norms: dict[str, Callable[[int], nn.Module]] = {
            "batch": nn.BatchNorm1d,
            "layer": nn.LayerNorm,
            "none": lambda d: nn.Identity(),
        }
        self.norm = norms[kind](d_model)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "batch":
            return self.norm(x.transpose(1, 2)).transpose(1, 2)
        return self.norm(x)


class ResidualBlock(nn.Module):
    """``x + Dropout(layer(norm(x)))`` (pre-norm) or ``norm(x + Dropout(layer(x)))`` (post-norm)."""

    def __init__(
        self, layer: nn.Module, d_model: int, norm: str, prenorm: bool, dropout: float, tie_dropout: bool = False
    ) -> None:
        super().__init__()
        self.layer = layer
        self.norm = SequenceNorm(d_model, norm)
        self.prenorm = prenorm
        self.dropout = make_dropout(dropout, tie_dropout)

    def forward(self, x: Tensor) -> Tensor:
        if self.prenorm:
            return x + self.dropout(self.layer(self.norm(x)))
        return self.norm(x + self.dropout(self.layer(x)))


def length_mask(lengths: Tensor, max_length: int) -> Tensor:
    """(B, L, 1) float mask, 1 at positions before each sequence's true length."""
    return (torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]).unsqueeze(-1)


class SequenceEncoder(nn.Module):
    """Encoder plus residual blocks: (B, L) tokens or (B, L, d_input) values -> (B, L, D) features.

    Token inputs are embedded by ``nn.Embedding``, or by ``embedding(vocab_size=..., d_model=...)``
    when given (the language model's adaptive input, ``lra_snn.models.adaptive.AdaptiveInput``).
    """

    def __init__(
        self,
        d_model: int,
        n_layers: int,
        layer: Callable[..., nn.Module],
        vocab_size: int | None = None,
        d_input: int | None = None,
        norm: str = "batch",
        prenorm: bool = False,
        dropout: float = 0.0,
        embedding: Callable[..., nn.Module] | None = None,
        tie_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        if embedding is not None and vocab_size is None:
            raise ValueError("model.encoder.embedding builds a token input layer; it needs a task with a vocabulary")
        if vocab_size is not None and d_input is None:
            self.encoder: nn.Module = (
                nn.Embedding(vocab_size, d_model)
                if embedding is None
                else embedding(vocab_size=vocab_size, d_model=d_model)
            )
        elif d_input is not None and vocab_size is None:
            self.encoder = nn.Linear(d_input, d_model)
        else:
            raise ValueError("give exactly one of vocab_size (token inputs) or d_input (real-valued inputs)")
        self.blocks = nn.ModuleList(
            ResidualBlock(layer(d_model=d_model), d_model, norm, prenorm, dropout, tie_dropout) for _ in range(n_layers)
        )
        self.final_norm = SequenceNorm(d_model, norm) if prenorm else nn.Identity()

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        x = self.encoder(inputs)
        mask = length_mask(lengths, x.shape[1]).to(x.dtype)
        for block in self.blocks:
            x = block(x * mask)
        return self.final_norm(x) * mask
