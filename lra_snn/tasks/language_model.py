"""Causal word-level language modelling (WikiText-103; docs/data.md "Formats", docs/recipes.md, WikiText-103).

A causal zoo encoder (``lra_snn.models.backbone.SequenceEncoder``) -> adaptive softmax
(``lra_snn.models.adaptive.AdaptiveSoftmax``: Grave et al. 2017; tied to the encoder's adaptive
input, Baevski and Auli 2019, when the encoder has one and ``tie_weights``). The S4 WikiText-103
pipeline's cutoffs 19,997 / 39,997 / 199,997 and ``div_value`` 4 are the defaults; cutoffs at or
beyond the vocabulary are dropped, so a small vocabulary keeps fewer bands (one band: a full
softmax). The loss is the mean NLL of the batch's scored tokens (positions before each row's true
length); perplexity is exp(mean NLL) over the whole split (``lra_snn.metrics.perplexity``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lra_snn.metrics.perplexity import MeanTokenNLL, Perplexity
from lra_snn.models.adaptive import AdaptiveInput, AdaptiveSoftmax
from lra_snn.models.backbone import SequenceEncoder
from lra_snn.tasks.base import SequenceTask

S4_CUTOFFS = (19_997, 39_997, 199_997)
EVAL_SPLITS = ("val", "test")


def non_causal_parts(encoder: nn.Module) -> list[str]:
    """Names of the encoder's submodules that let a step see later steps.

    Bidirectional layers (any module with ``bidirectional = True``) and non-causal neurons
    (``causal = False``: PSN, masked PSN) read the future directly;
    BatchNorm in training normalises every step with statistics that include later steps.
    """
    found = []
    for name, module in encoder.named_modules():
        if getattr(module, "bidirectional", False) is True:
            found.append(f"{name or 'encoder'} (bidirectional; set model.encoder.layer.bidirectional=false)")
        elif getattr(module, "causal", True) is False:
            found.append(f"{name} ({type(module).__name__} mixes all steps; use a causal neuron)")
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            found.append(f"{name} (BatchNorm mixes later steps into its statistics; set model.encoder.norm=layer)")
    return found


class LanguageModelTask(SequenceTask):
    """Next-token prediction on batches ``{"inputs", "targets", "lengths"}`` of shape (B, L), (B, L), (B,).

    Logs ``train/loss`` (mean token NLL of the step), ``val/loss``, ``val/ppl``, ``test/loss`` and
    ``test/ppl`` (over every scored token of the split). The encoder must be causal and embed
    ``vocab_size`` token ids. ``softmax_dropout`` is the S4 pipeline's ``dropsoft``; the input's
    ``dropemb`` belongs to the adaptive input (``model.encoder.embedding.dropout``).
    """

    def __init__(
        self,
        encoder: SequenceEncoder,
        vocab_size: int,
        cutoffs: Sequence[int] = S4_CUTOFFS,
        div_value: float = 4.0,
        tie_weights: bool = True,
        tie_projections: bool = True,
        softmax_dropout: float = 0.0,
        init_scale: float = 0.5,
        bias_scale: float = 1.0,
        lr: float = 5e-4,
        weight_decay: float = 0.1,
        dynamics_lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_steps: int = 1000,
        total_steps: int | None = None,
    ) -> None:  # pragma: no mutate block (hparams read from this frame)
        super().__init__()
        self._check_encoder(encoder, vocab_size)
        self.save_hyperparameters(ignore=["encoder"])
        self.encoder = encoder
        adaptive_input = encoder.encoder if isinstance(encoder.encoder, AdaptiveInput) else None
        self.head = AdaptiveSoftmax(
            vocab_size,
            encoder.d_model,
            cutoffs,
            div_value,
            dropout=softmax_dropout,
            init_scale=init_scale,
            bias_scale=bias_scale,
            tied=adaptive_input if tie_weights else None,
            tie_projections=tie_projections,
        )
        self.metrics = nn.ModuleDict(
            {
                f"{split}_{name}": metric()
                for split in EVAL_SPLITS
                for name, metric in (("loss", MeanTokenNLL), ("ppl", Perplexity))
            }
        )

    @staticmethod
    def _check_encoder(encoder: SequenceEncoder, vocab_size: int) -> None:
        embedding = getattr(encoder, "encoder", None)
        if not isinstance(embedding, (nn.Embedding, AdaptiveInput)):
            raise ValueError("LanguageModelTask needs a token encoder (SequenceEncoder built with vocab_size)")
        if embedding.num_embeddings != vocab_size:
            raise ValueError(
                f"the encoder embeds {embedding.num_embeddings} tokens but the vocabulary has "
                f"{vocab_size}; build both from the data module's vocab_size"
            )
        leaks = non_causal_parts(encoder)
        if leaks:
            raise ValueError(
                "a language model needs a causal encoder, but these parts see later steps: " + "; ".join(leaks)
            )

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Features (B, L, D) of every position."""
        return self.encoder(inputs, lengths)

    def token_nll(self, batch: dict[str, Tensor]) -> Tensor:
        """NLL (nats, float32) of every scored token of the batch, row by row: shape (sum of lengths,)."""
        features = self(batch["inputs"], batch["lengths"])
        steps = torch.arange(features.shape[1], device=features.device)
        scored = steps[None, :] < batch["lengths"][:, None]
        return self.head.nll(features[scored].float(), batch["targets"][scored])

    def log_probs(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Log-probabilities (B, L, vocab_size) of the next token at every position (for inspection)."""
        features = self(inputs, lengths).float()
        return self.head.log_prob(features.flatten(0, 1)).view(*features.shape[:2], -1)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        nll = self.token_nll(batch)
        loss = nll.sum() / max(nll.numel(), 1)
        self.check_finite(loss, self.global_step)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=max(nll.numel(), 1))
        return loss

    def _evaluation_step(self, batch: dict[str, Tensor], split: str) -> None:
        nll = self.token_nll(batch)
        for name in ("loss", "ppl"):
            metric = self.metric(f"{split}_{name}")
            metric.update(nll)
            self.log(f"{split}/{name}", metric, on_step=False, on_epoch=True, prog_bar=name == "ppl")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "test")
