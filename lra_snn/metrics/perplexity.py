"""Token-level negative log-likelihood and perplexity over a whole evaluation stream (docs/data.md, WikiText-103).

Perplexity = exp(mean token cross-entropy) over every scored token of the split: the metric sums
the NLL of each token and counts tokens across batches (and devices, by summing both), so windows
of different lengths are weighted by their tokens, never averaged per batch.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class MeanTokenNLL(Metric):
    """Mean negative log-likelihood (nats) of all tokens passed to ``update`` since the last reset."""

    full_state_update = False
    higher_is_better = False
    nll_sum: Tensor
    tokens: Tensor

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("nll_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("tokens", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, token_nll: Tensor) -> None:
        """Add the NLL of each scored token (any shape; every element is one token)."""
        self.nll_sum += token_nll.detach().to(torch.float64).sum()
        self.tokens += token_nll.numel()

    def compute(self) -> Tensor:
        if self.tokens == 0:
            raise RuntimeError(f"{type(self).__name__}.compute() called before any token was scored")
        return self.nll_sum / self.tokens


class Perplexity(MeanTokenNLL):
    """exp(mean token NLL) of all tokens passed to ``update`` since the last reset."""

    def compute(self) -> Tensor:
        return super().compute().exp()
