"""Every log line of a cell names the cell, so the lines of parallel jobs can be told apart.

``conf/hydra/job_logging/cell.yaml`` puts ``%(cell)s`` in the log format of every job (console and the
job's log file) and attaches ``CellNameFilter`` to both handlers; ``set_cell_label`` names the cell this
process runs (one at a time: a joblib worker or a SLURM task runs its jobs one after another). Lines
logged before a cell is named, or outside a run, carry the logger's name instead.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

_current: str | None = None


def cell_label(cfg: DictConfig) -> str:
    """``<profile>/<task> <model> seed <seed>``: how logs and the sweep summary name a cell."""
    return f"{cfg.profile_name}/{cfg.task_name} {cfg.model.name} seed {cfg.seed}"


def set_cell_label(label: str | None) -> None:
    """Name the cell this process runs from now on (None: no cell)."""
    global _current
    _current = label


class CellNameFilter(logging.Filter):
    """Sets ``record.cell`` to the running cell's label (else the logger's name); filters nothing out."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.cell = _current or record.name
        return True
