"""What every task shares: AdamW over tagged parameter groups with a per-step warmup-cosine
schedule (docs/recipes.md, "Shared training conventions"), and checkpoints that rebuild themselves:
each carries the run's resolved config (``lra_snn.tasks.stored_config``), so
``Task.load_from_checkpoint(path)`` needs no other argument."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torchmetrics

from lra_snn.models.streaming import StreamingEncoder
from lra_snn.optim.groups import param_groups
from lra_snn.optim.schedule import warmup_cosine
from lra_snn.tasks.stored_config import CONFIG_KEY, build_encoder, read_stored, stored_entry


class SequenceTask(L.LightningModule):
    """Base LightningModule; subclasses call ``save_hyperparameters`` with the optimizer settings
    ``lr``, ``weight_decay``, ``dynamics_lr``, ``betas``, ``warmup_steps``, ``total_steps``."""

    metrics: torch.nn.ModuleDict
    encoder: torch.nn.Module
    #: the run's resolved config and encoder input size (``lra_snn.tasks.stored_config.stored_entry``),
    #: written into every checkpoint; set by the train CLI (``remember_run``)
    stored_run: dict[str, Any] | None = None

    def remember_run(self, config: Mapping[str, Any], encoder_inputs: Mapping[str, int]) -> None:
        """Keep the run's resolved ``config`` and the encoder's ``vocab_size`` / ``d_input`` for the checkpoints."""
        self.stored_run = stored_entry(config, encoder_inputs)

    def stream(self) -> None:
        """Switch to streaming inference: the encoder runs one step at a time from its step forms
        (``lra_snn.models.streaming``; ``StreamingError`` names what cannot stream) and the task is put in eval mode."""
        if not isinstance(self.encoder, StreamingEncoder):
            self.encoder = StreamingEncoder(self.encoder)  # type: ignore[arg-type]
        self.eval()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.stored_run is not None:
            checkpoint[CONFIG_KEY] = self.stored_run

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        entry = checkpoint.get(CONFIG_KEY)
        if isinstance(entry, dict):
            self.stored_run = entry

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls, checkpoint_path: str | Path, map_location: Any = None, strict: bool | None = None, **kwargs: Any
    ):
        """The task of a checkpoint, its encoder rebuilt from the config the checkpoint stores
        (its ``_target_`` entries checked against the project's own); ``encoder=`` skips the rebuild."""
        if "encoder" not in kwargs:
            kwargs["encoder"] = build_encoder(read_stored(checkpoint_path), str(checkpoint_path))
        kwargs.setdefault(
            "weights_only", True
        )  # plain Python values and tensors only, unless the caller says otherwise
        loader = super().load_from_checkpoint
        return loader(checkpoint_path, map_location=map_location, strict=strict, **kwargs)

    def metric(self, name: str) -> torchmetrics.Metric:
        """The torchmetrics object ``name`` (e.g. ``"val_acc"``) of ``self.metrics``."""
        metric = self.metrics[name]
        assert isinstance(metric, torchmetrics.Metric)
        return metric

    def configure_optimizers(self):
        hp = self.hparams
        groups = param_groups(self, hp.lr, hp.weight_decay, hp.dynamics_lr)
        optimizer = torch.optim.AdamW(groups, betas=tuple(hp.betas))
        total = hp.total_steps or int(self.trainer.estimated_stepping_batches)
        scheduler = warmup_cosine(optimizer, hp.warmup_steps, total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    @staticmethod
    def check_finite(loss: torch.Tensor, step: int) -> None:
        """Stop with a message naming the step when the training loss is NaN or infinite."""
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss {loss.item()} at global step {step}")
