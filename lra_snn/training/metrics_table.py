"""The Lightning callback that collects a run's learning curves (``metrics.csv``, ``lra_snn.results.curves``).

``MetricsTable`` keeps one row per training stretch (the mean training loss), validation pass, final
re-validation and test pass of the evaluated checkpoint, as that module's docstring describes the file. The
rows are part of its checkpoint state, so a resumed run keeps the rows of its earlier segments (evaluating a
checkpoint after training does not take them back: the rows stay this run's).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch

from lra_snn.results.atomic import write_atomically
from lra_snn.results.curves import VALUE_COLUMNS, Row, format_rows

STATE_KEY = "lra_snn_metrics_table"  # the rows so far, in every checkpoint
_EVALUATION_STAGES = {"validate": "final_val", "test": "test"}  # trainer.state.fn -> stage after training


def _scalar(value: Any) -> float | None:
    """A logged value as a float (None for what is not a number)."""
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu()) if value.numel() == 1 else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _progress(trainer: L.Trainer, batches_done: int) -> float:
    """Epochs of training done after ``batches_done`` batches of the current epoch."""
    per_epoch = trainer.num_training_batches
    if not isinstance(per_epoch, int) or per_epoch <= 0:  # inf for a loader without a length
        return float(trainer.current_epoch)
    return trainer.current_epoch + min(batches_done, per_epoch) / per_epoch


class MetricsTable(L.Callback):
    """Collects a run's train, validation, final-validation and test rows (module docstring)."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self._loss_sum = 0.0
        self._loss_count = 0
        self._evaluated: tuple[float, int] | None = None  # (epoch, step) of the checkpoint under evaluation

    # ---------------------------------------------------------------- training

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = _scalar(outputs.get("loss") if isinstance(outputs, Mapping) else outputs)
        if loss is None:
            return
        self._loss_sum += loss
        self._loss_count += 1
        every = int(getattr(trainer, "log_every_n_steps", 1) or 0)  # 0: no step logging, a row per epoch only
        last_of_epoch = batch_idx + 1 == trainer.num_training_batches
        if last_of_epoch or (every > 0 and (batch_idx + 1) % every == 0):
            mean = self._loss_sum / self._loss_count
            self.rows.append(Row("train", _progress(trainer, batch_idx + 1), trainer.global_step, {"loss": mean}))
            self._loss_sum, self._loss_count = 0.0, 0

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if trainer.state.fn == "fit":
            batches_done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
            self._add("val", "val", trainer, (_progress(trainer, batches_done), trainer.global_step))
        else:
            self._add(_EVALUATION_STAGES["validate"], "val", trainer, self._evaluated)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._add(_EVALUATION_STAGES["test"], "test", trainer, self._evaluated)

    # ---------------------------------------------------------------- evaluation after training

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn != "fit":
            self._evaluated = self._checkpoint_point(trainer)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluated = self._checkpoint_point(trainer)

    def _checkpoint_point(self, trainer: L.Trainer) -> tuple[float, int]:
        """(epoch, step) of the weights being evaluated: the loaded checkpoint's, else the last training point.

        A checkpoint saved after a validation pass is placed on that pass's row (same step)."""
        if trainer.ckpt_path:
            saved = torch.load(trainer.ckpt_path, map_location="cpu", weights_only=False, mmap=True)
            step = int(saved["global_step"])
            epochs = [row.epoch for row in self.rows if row.stage == "val" and row.step == step]
            return (epochs[-1] if epochs else float(saved["epoch"]) + 1.0), step
        trained = [row for row in self.rows if row.stage in ("train", "val")]
        return (max(row.epoch for row in trained), trainer.global_step) if trained else (0.0, trainer.global_step)

    def _add(self, stage: str, split: str, trainer: L.Trainer, point: tuple[float, int] | None) -> None:
        epoch, step = point if point is not None else (float(trainer.current_epoch), trainer.global_step)
        values = {}
        for name in VALUE_COLUMNS:
            value = _scalar(trainer.callback_metrics.get(f"{split}/{name}"))
            if value is not None:
                values[name] = value
        if values:
            self.rows.append(Row(stage, epoch, step, values))

    # ---------------------------------------------------------------- checkpoint state and file

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[STATE_KEY] = {
            "rows": [row.to_json() for row in self.rows],
            "loss_sum": self._loss_sum,
            "loss_count": self._loss_count,
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        """Take the rows back when a fit resumes; evaluating a checkpoint after training keeps this run's rows."""
        state = checkpoint.get(STATE_KEY)
        if state is None or trainer.state.fn != "fit":
            return
        self.rows = [Row(r["stage"], float(r["epoch"]), int(r["step"]), dict(r["values"])) for r in state["rows"]]
        self._loss_sum = float(state["loss_sum"])
        self._loss_count = int(state["loss_count"])

    def write(self, path: Path) -> None:
        """Write the rows as the CSV file of the module docstring at ``path`` (atomically)."""
        write_atomically(path, format_rows(self.rows))
