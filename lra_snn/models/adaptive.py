"""Adaptive input embeddings tied to an adaptive softmax, for word-level language modelling.

The vocabulary, sorted by frequency, is cut into bands by ``cutoffs`` ``c_1 < c_2 < ...``: band 0
holds the ids ``[0, c_1)``, band ``i`` the ids ``[c_i, c_{i+1})`` (the last band ends at the
vocabulary size V). Band ``i`` works in a smaller space of ``d_i = d / k^i`` dimensions
(``k = div_value``; at least 1 dimension, for tiny test models).

**Adaptive input** (Baevski and Auli 2019, "Adaptive Input Representations for Neural Language
Modeling", ICLR, section 3): a token ``w`` of band ``i`` is embedded as

    e(w) = sqrt(d) * P_i E_i[w - c_i],      E_i in R^{(c_{i+1} - c_i) x d_i},  P_i in R^{d x d_i},

with dropout on ``E_i[.]`` before the projection (the S4 WikiText-103 pipeline's ``dropemb``) and
the sqrt(d) scale of the S4 code base.

**Adaptive softmax** (Grave, Joulin, Cisse, Grangier and Jegou 2017, "Efficient softmax
approximation for GPUs", ICML, section 4.2, eqs. 4-5): the head scores band 0's tokens and one
entry per tail band,

    head(h) = log_softmax( [E_0; U] Q_0^T h + [b_0; u] ),                 (c_1 + n_tails entries)
    log p(w | h) = head(h)_w                                    for w in band 0,
    log p(w | h) = head(h)_{c_1 + i - 1} + log_softmax( E_i Q_i^T h + b_i )_{w - c_i}   for w in band i >= 1,

so the probabilities over the whole vocabulary sum to 1 exactly. With ``tied`` input (Baevski and
Auli's tied adaptive input and softmax), the output tables ``E_i`` are the input tables and the
tail projections ``Q_i = P_i`` (i >= 1) are the input projections; the head keeps its own
projection ``Q_0``. Dropout (``dropsoft``) acts on ``Q_i^T h``. Initialisation follows the S4
WikiText-103 pipeline (``init_scale``, ``bias_scale``): tables normal with std
``init_scale / sqrt(d_i)``, projections normal with std ``init_scale / sqrt(d)``, biases uniform in
``+- bias_scale / sqrt(d)``, the cluster rows ``U, u`` and the untied head projection ``Q_0`` zero.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lra_snn.optim.groups import tag


def clip_cutoffs(cutoffs: Sequence[int], vocab_size: int) -> list[int]:
    """The cutoffs below ``vocab_size`` (each leaves a non-empty band after it), checked to increase.

    A vocabulary smaller than the recipe's cutoffs (small profiles, WikiText-2) keeps fewer bands;
    one below the first cutoff keeps one band: a plain softmax.
    """
    cutoffs = [int(c) for c in cutoffs]
    if any(c < 1 for c in cutoffs) or cutoffs != sorted(set(cutoffs)):
        raise ValueError(f"task.cutoffs must be increasing positive integers, got {cutoffs}")
    return [c for c in cutoffs if c < vocab_size]


def band_bounds(cutoffs: Sequence[int], vocab_size: int) -> list[tuple[int, int]]:
    """``[(0, c_1), (c_1, c_2), ..., (c_last, vocab_size)]`` for the clipped cutoffs."""
    edges = [0, *clip_cutoffs(cutoffs, vocab_size), vocab_size]
    return list(itertools.pairwise(edges))


def band_width(d_model: int, div_value: float, band: int) -> int:
    """Dimensions of band ``band``: ``d_model / div_value^band``, rounded down, at least 1."""
    if div_value < 1:
        raise ValueError(f"task.div_value must be >= 1 (each band no wider than the last), got {div_value}")
    return max(1, int(d_model // (div_value**band)))


class AdaptiveInput(nn.Module):
    """Token ids (any shape) -> embeddings (..., d_model): Baevski and Auli's adaptive input (module docstring)."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        cutoffs: Sequence[int],
        div_value: float = 4.0,
        dropout: float = 0.0,
        init_scale: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_embeddings = vocab_size
        self.d_model = d_model
        self.bounds = band_bounds(cutoffs, vocab_size)
        self.scale = math.sqrt(d_model)
        widths = [band_width(d_model, div_value, i) for i in range(len(self.bounds))]
        tables = [nn.Embedding(hi - lo, width) for (lo, hi), width in zip(self.bounds, widths)]
        for table, width in zip(tables, widths):
            nn.init.normal_(table.weight, std=init_scale / math.sqrt(width))
        self.tables = nn.ModuleList(tables)
        self.projections = nn.ParameterList(
            nn.Parameter(torch.randn(d_model, width) * (init_scale / math.sqrt(d_model))) for width in widths
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor) -> Tensor:
        flat = tokens.reshape(-1)
        out = self.projections[0].new_zeros(flat.shape[0], self.d_model)
        for (lo, hi), table, projection in zip(self.bounds, self.tables, self.projections):
            rows = ((flat >= lo) & (flat < hi)).nonzero().squeeze(1)
            if rows.numel():
                embedded = F.linear(self.dropout(table(flat[rows] - lo)), projection)
                out = out.index_copy(0, rows, embedded.to(out.dtype))
        return (out * self.scale).view(*tokens.shape, self.d_model)


class AdaptiveSoftmax(nn.Module):
    """Features (N, d_model) -> next-token log-probabilities: Grave et al.'s adaptive softmax,
    optionally tied to an ``AdaptiveInput`` (module docstring).

    ``nll(hidden, targets)`` gives each row's negative log-likelihood (only the tail band of each
    row's target is scored); ``log_prob(hidden)`` the full (N, vocab_size) log-distribution.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        cutoffs: Sequence[int],
        div_value: float = 4.0,
        dropout: float = 0.0,
        init_scale: float = 0.5,
        bias_scale: float = 1.0,
        tied: AdaptiveInput | None = None,
        tie_projections: bool = True,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.bounds = band_bounds(cutoffs, vocab_size)
        widths = [band_width(d_model, div_value, i) for i in range(len(self.bounds))]
        if tied is not None and (tied.bounds != self.bounds or tied.d_model != d_model):
            raise ValueError(
                f"the tied adaptive input has bands {tied.bounds} of width {tied.d_model}, the softmax "
                f"{self.bounds} of width {d_model}; build both from task.cutoffs, task.div_value and d_model"
            )
        # the input whose tables (and tail projections) this softmax reads; held outside the module
        # tree, so its tensors stay the encoder's alone in parameters() and the state dict
        self._tied: tuple[AdaptiveInput, ...] = (tied,) if tied is not None else ()
        self.tie_projections = tied is not None and tie_projections
        if tied is None:
            self.tables = nn.ParameterList(
                nn.Parameter(torch.randn(hi - lo, width) * (init_scale / math.sqrt(width)))
                for (lo, hi), width in zip(self.bounds, widths)
            )
        # the head's projection is never tied; the tails' are when tie_projections
        own = [0] if self.tie_projections else range(len(widths))
        self.projections = nn.ParameterDict(
            {
                str(i): nn.Parameter(
                    torch.zeros(d_model, widths[i])
                    if i == 0 and tied is not None
                    else torch.randn(d_model, widths[i]) * (init_scale / math.sqrt(d_model))
                )
                for i in own
            }
        )
        bound = bias_scale / math.sqrt(d_model)
        self.biases = nn.ParameterList(
            tag(nn.Parameter(torch.empty(hi - lo).uniform_(-bound, bound)), "no_decay") for lo, hi in self.bounds
        )
        n_tails = len(self.bounds) - 1
        self.cluster_weight = nn.Parameter(torch.zeros(n_tails, widths[0]))
        self.cluster_bias = tag(nn.Parameter(torch.zeros(n_tails)), "no_decay")
        self.dropout = nn.Dropout(dropout)

    def table(self, band: int) -> Tensor:
        """Band ``band``'s output table (the tied input's embedding table when tied)."""
        if self._tied:
            embedding = self._tied[0].tables[band]
            assert isinstance(embedding, nn.Embedding)
            return embedding.weight
        return self.tables[band]

    def projection(self, band: int) -> Tensor:
        """Band ``band``'s projection (d_model, d_band): its own, or the tied input's."""
        if str(band) in self.projections:
            return self.projections[str(band)]
        return self._tied[0].projections[band]

    def band_logits(self, hidden: Tensor, band: int) -> Tensor:
        """Logits of band ``band``'s tokens (the head also gets one per tail band)."""
        projected = self.dropout(hidden @ self.projection(band))
        if band == 0:
            weight = torch.cat([self.table(0), self.cluster_weight])
            return F.linear(projected, weight, torch.cat([self.biases[0], self.cluster_bias]))
        return F.linear(projected, self.table(band), self.biases[band])

    def nll(self, hidden: Tensor, targets: Tensor) -> Tensor:
        """Negative log-likelihood (N,) of ``targets`` (N,) under the distribution at ``hidden`` (N, d_model)."""
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= self.vocab_size):
            raise ValueError(
                f"targets must be token ids in [0, {self.vocab_size}), got {targets.min()}..{targets.max()}"
            )
        head = F.log_softmax(self.band_logits(hidden, 0), dim=-1)
        first_tail = self.bounds[0][1]
        in_head = targets < first_tail
        nll = -head.gather(1, torch.where(in_head, targets, 0)[:, None]).squeeze(1) * in_head
        for band, (lo, hi) in enumerate(self.bounds[1:], start=1):
            rows = ((targets >= lo) & (targets < hi)).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            tail = F.log_softmax(self.band_logits(hidden[rows], band), dim=-1)
            word = tail.gather(1, (targets[rows] - lo)[:, None]).squeeze(1)
            nll = nll.index_put((rows,), -(head[rows, first_tail + band - 1] + word))
        return nll

    def log_prob(self, hidden: Tensor) -> Tensor:
        """Log-probabilities (N, vocab_size) of every token at every row of ``hidden`` (N, d_model)."""
        head = F.log_softmax(self.band_logits(hidden, 0), dim=-1)
        first_tail = self.bounds[0][1]
        parts = [head[:, :first_tail]]
        for band in range(1, len(self.bounds)):
            tail = F.log_softmax(self.band_logits(hidden, band), dim=-1)
            parts.append(head[:, first_tail + band - 1, None] + tail)
        return torch.cat(parts, dim=-1)
