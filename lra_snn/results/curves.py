"""A run's learning curves as a small CSV file beside its ``result.json`` (``metrics.csv``).

The file is what the figures (``lra_snn.cli.plots``) read: it travels with the result, holds no
path, and is written once the run completes. One row per point, columns:

- ``stage``: ``train`` (mean training loss over the batches since the previous train row, one row
  every ``trainer.log_every_n_steps`` batches and at the end of each epoch; a NaN stays NaN), ``val`` (a validation
  pass during training), ``final_val`` (the re-validation of the evaluated checkpoint after
  training) or ``test`` (the test pass of that checkpoint);
- ``epoch``: epochs of training done at that point (1.0 = after the first epoch; train rows fall in
  between). A ``final_val`` or ``test`` row carries the epoch and step of the checkpoint it
  evaluated, so it lands on the training point it re-measures, never after the last epoch;
- ``step``: the optimizer step at that point;
- ``loss`` and, where the task logs them, ``acc`` (a fraction, as in ``result.json``) and ``ppl``
  (a column no row has is left out).

``MetricsTable`` is the Lightning callback that collects the rows; they are part of its checkpoint
state, so a resumed run keeps the rows of its earlier segments (evaluating a checkpoint after training
does not take them back: the rows stay this run's).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch

from lra_snn.results.atomic import write_atomically

METRICS_FILENAME = "metrics.csv"
STAGES = ("train", "val", "final_val", "test")
VALUE_COLUMNS = ("loss", "acc", "ppl")  # what a row may hold, read from "<split>/<name>" metrics
STATE_KEY = "lra_snn_metrics_table"  # the rows so far, in every checkpoint
_EVALUATION_STAGES = {"validate": "final_val", "test": "test"}  # trainer.state.fn -> stage after training


class MetricsFileError(ValueError):
    """A metrics file that cannot be read; the message names the file and the fault."""


@dataclass(frozen=True)
class Row:
    """One point of a run's curves; ``values`` maps a VALUE_COLUMNS name to its number."""

    stage: str
    epoch: float
    step: int
    values: Mapping[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "epoch": self.epoch, "step": self.step, "values": dict(self.values)}


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


def format_rows(rows: list[Row]) -> str:
    """The CSV text of ``rows``: stage, epoch, step and the VALUE_COLUMNS some row has (empty where a row has none)."""
    present = [name for name in VALUE_COLUMNS if any(name in row.values for row in rows)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["stage", "epoch", "step", *present])
    for row in rows:
        cells = [f"{row.values[name]:.6g}" if name in row.values else "" for name in present]
        writer.writerow([row.stage, f"{row.epoch:.4f}", row.step, *cells])
    return buffer.getvalue()


def read_metrics_file(path: Path) -> list[Row]:
    """The rows of a metrics file; MetricsFileError naming the file, line and fault when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise MetricsFileError(f"{path}: cannot be read ({err})") from err
    reader = csv.DictReader(io.StringIO(text))
    missing = [name for name in ("stage", "epoch", "step") if name not in (reader.fieldnames or [])]
    if missing:
        raise MetricsFileError(
            f"{path}: no column {', '.join(missing)} (expected stage,epoch,step and some of {', '.join(VALUE_COLUMNS)})"
        )
    rows = []
    for line, record in enumerate(reader, start=2):
        if record["stage"] not in STAGES:
            raise MetricsFileError(f"{path}, line {line}: stage {record['stage']!r} is not one of {', '.join(STAGES)}")
        try:
            values = {name: float(record[name]) for name in VALUE_COLUMNS if record.get(name)}
            rows.append(Row(record["stage"], float(record["epoch"]), int(record["step"]), values))
        except ValueError as err:
            raise MetricsFileError(f"{path}, line {line}: {err}") from err
    return rows


def metrics_path(result_path: Path, name: object) -> Path:
    """The metrics file that the record at ``result_path`` names (``metrics_file``): a file name in its folder.

    MetricsFileError when the record names none (written before runs kept one) or names a path."""
    if name is None:
        raise MetricsFileError(
            f"{result_path} names no metrics_file (written before runs kept {METRICS_FILENAME}); rerun the cell"
        )
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise MetricsFileError(f"{result_path}: metrics_file is {name!r}, expected a file name beside it")
    return result_path.parent / name


@dataclass(frozen=True)
class BandPoint:
    """The seeds' values of one column at one epoch: their mean, min and max, and how many seeds have it."""

    epoch: float
    mean: float
    low: float
    high: float
    n_seeds: int


def seed_band(rows_by_seed: Mapping[int, list[Row]], stage: str, column: str) -> list[BandPoint]:
    """Mean, min and max over seeds of ``column`` in the ``stage`` rows, per epoch (rows at the same epoch align).

    A seed with several rows at one epoch (a resumed run's repeated pass) counts with its last one."""
    at_epoch: dict[float, dict[int, float]] = {}
    for seed, rows in rows_by_seed.items():
        for row in rows:
            if row.stage == stage and column in row.values:
                at_epoch.setdefault(round(row.epoch, 4), {})[seed] = row.values[column]
    band = []
    for epoch in sorted(at_epoch):
        values = list(at_epoch[epoch].values())
        band.append(BandPoint(epoch, sum(values) / len(values), min(values), max(values), len(values)))
    return band
