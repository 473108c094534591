"""A sweep-level progress line for Hydra multiruns: ``cell k of N, elapsed, estimate left``.

Lightning's bar shows progress inside a cell; this callback shows where the sweep stands. The
number of cells is the product of the sweep overrides' lengths; start time and N are written
to ``<sweep dir>/sweep_progress.json`` so jobs launched in other processes (joblib, SLURM)
report against the same clock.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)
STATE_FILE = "sweep_progress.json"


def count_cells(overrides: list[str]) -> int:
    """Number of jobs a basic sweep over ``overrides`` launches (product of the sweep lengths)."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return math.prod(len(list(o.sweep_iterator())) for o in parsed if o.is_sweep_override())


def progress_line(index: int, total: int, elapsed_s: float) -> str:
    """``cell k of N, elapsed, estimate left`` (the estimate assumes the cells done so far are typical)."""
    done = index - 1
    left = f"~{elapsed_s / done * (total - done) / 60:.1f} min left" if done else "estimate after the first cell"
    return f"sweep: cell {index} of {total}, {elapsed_s / 60:.1f} min elapsed, {left}"


class SweepProgress(Callback):
    """Hydra callback: logs the progress line at the start of every multirun job."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        state = {"total": count_cells(config.hydra.overrides.task), "started": time.time()}
        (sweep_dir / STATE_FILE).write_text(json.dumps(state))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        state_file = Path(config.hydra.sweep.dir) / STATE_FILE
        if config.hydra.mode.name != "MULTIRUN" or not state_file.exists():
            return
        state = json.loads(state_file.read_text())
        log.info(progress_line(config.hydra.job.num + 1, state["total"], time.time() - state["started"]))
