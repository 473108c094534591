"""Sequence classification: pooling over the true length, a linear head (or LRA Retrieval's
dual-encoder head), cross-entropy and torchmetrics accuracy (docs/recipes.md; docs/data.md "Retrieval")."""

from __future__ import annotations

import torch
import torchmetrics
from torch import Tensor, nn
from torch.nn import functional as F

from lra_snn.models.backbone import SequenceEncoder
from lra_snn.models.streaming import StreamingEncoder
from lra_snn.tasks.base import SequenceTask

POOLS = ("mean", "last")


def pool(x: Tensor, lengths: Tensor, kind: str) -> Tensor:
    """Mean over the true length (the encoder zeroes padding) or the last true step: (B, L, D) -> (B, D)."""
    if kind == "mean":
        return x.sum(1) / lengths.clamp_min(1)[:, None].to(x.dtype)
    if kind == "last":
        return x[torch.arange(x.shape[0], device=x.device), (lengths - 1).clamp_min(0)]
    raise ValueError(f"unknown pooling {kind!r}; choose one of {POOLS}")


class PairHead(nn.Module):
    """LRA Retrieval head: ``[a, b, a*b, a-b] -> Linear -> GELU -> Linear`` on two pooled documents."""

    def __init__(self, d_model: int, n_classes: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(4 * d_model, d_model), nn.GELU(), nn.Linear(d_model, n_classes))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.mlp(torch.cat([a, b, a * b, a - b], -1))


class ClassificationTask(SequenceTask):
    """Classifies batches ``{"inputs", "lengths", "labels"}``; with ``pair=True`` inputs are
    (B, 2, L) document pairs encoded by the shared encoder (stacked along the batch)."""

    def __init__(
        self,
        encoder: SequenceEncoder,
        n_classes: int,
        pool: str = "mean",
        pair: bool = False,
        lr: float = 0.01,
        weight_decay: float = 0.05,
        dynamics_lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        warmup_steps: int = 0,
        total_steps: int | None = None,
    ) -> None:  # pragma: no mutate block (hparams read from this frame)
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pooling {pool!r}; choose one of {POOLS}")
        self.save_hyperparameters(ignore=["encoder"])
        self.encoder = encoder
        self.head = PairHead(encoder.d_model, n_classes) if pair else nn.Linear(encoder.d_model, n_classes)
        self.metrics = nn.ModuleDict(
            {
                f"{split}_acc": torchmetrics.classification.MulticlassAccuracy(n_classes, average="micro")
                for split in ("train", "val", "test")
            }
        )
        # example-weighted mean loss over the whole split (exact under DDP's unequal shards)
        self.metrics.update({f"{split}_loss": torchmetrics.MeanMetric() for split in ("val", "test")})

    def pooled(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Encoder features pooled over the true length (B, D); a streaming encoder pools as it steps."""
        if isinstance(self.encoder, StreamingEncoder):
            return self.encoder.pooled(inputs, lengths, self.hparams["pool"])
        return pool(self.encoder(inputs, lengths), lengths, self.hparams["pool"])

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        if not self.hparams["pair"]:
            return self.head(self.pooled(inputs, lengths))
        batch = inputs.shape[0]
        a, b = self.pooled(inputs.flatten(0, 1), lengths.reshape(2 * batch)).view(batch, 2, -1).unbind(1)
        return self.head(a, b)

    def _shared_step(self, batch: dict[str, Tensor], split: str) -> Tensor:
        logits = self(batch["inputs"], batch["lengths"])
        loss = F.cross_entropy(logits.float(), batch["labels"])
        accuracy = self.metric(f"{split}_acc")
        accuracy(logits, batch["labels"])
        size = batch["labels"].shape[0]
        if split == "train":
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        else:
            mean_loss = self.metric(f"{split}_loss")
            mean_loss.update(loss.detach(), weight=size)
            self.log(f"{split}/loss", mean_loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=size)
        self.log(f"{split}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=size)
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self._shared_step(batch, "train")
        self.check_finite(loss, self.global_step)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")
