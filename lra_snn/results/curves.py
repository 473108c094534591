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

The Lightning callback that collects the rows during training is ``lra_snn.training.metrics_table``;
this module reads and writes the file without importing torch or Lightning.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METRICS_FILENAME = "metrics.csv"
STAGES = ("train", "val", "final_val", "test")
VALUE_COLUMNS = ("loss", "acc", "ppl")  # what a row may hold, read from "<split>/<name>" metrics


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
