"""The LightningModule for sequence classification: cross-entropy, torchmetrics accuracy,
AdamW with tagged parameter groups and a per-step warmup-cosine schedule (recipes.md)."""

from __future__ import annotations

import lightning as L
import torch
import torchmetrics
from torch import Tensor, nn
from torch.nn import functional as F

from lra_snn.optim import param_groups, warmup_cosine


class ClassificationTask(L.LightningModule):
    """Trains ``model(inputs, lengths) -> logits`` on batches ``{"inputs", "lengths", "labels"}``."""

    def __init__(self, model: nn.Module, n_classes: int, lr: float = 0.01, weight_decay: float = 0.05,
                 dynamics_lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 warmup_steps: int = 0, total_steps: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.metrics = nn.ModuleDict({
            f"{split}_acc": torchmetrics.classification.MulticlassAccuracy(n_classes, average="micro")
            for split in ("train", "val", "test")})

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        return self.model(inputs, lengths)

    def _shared_step(self, batch: dict[str, Tensor], split: str) -> Tensor:
        logits = self(batch["inputs"], batch["lengths"])
        loss = F.cross_entropy(logits.float(), batch["labels"])
        accuracy = self.metrics[f"{split}_acc"]
        accuracy(logits, batch["labels"])
        on_step = split == "train"
        batch_size = batch["labels"].shape[0]
        self.log(f"{split}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=batch_size,
                 sync_dist=not on_step)
        self.log(f"{split}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size)
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self._shared_step(batch, "train")
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss {loss.item()} at global step {self.global_step}")
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def configure_optimizers(self):
        hp = self.hparams
        groups = param_groups(self.model, hp.lr, hp.weight_decay, hp.dynamics_lr)
        optimizer = torch.optim.AdamW(groups, betas=tuple(hp.betas))
        total = hp.total_steps or int(self.trainer.estimated_stepping_batches)
        scheduler = warmup_cosine(optimizer, hp.warmup_steps, total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
