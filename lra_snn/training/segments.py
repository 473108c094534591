"""A run's wall time and CSV metrics log over all its segments (launches), not only the last one.

Every checkpoint records the segments so far (start time, wall time, first and last optimizer step),
and the CSV metrics logs are flushed when it is saved. A run resumed from that checkpoint continues
the list with its own segment and writes the earlier rows back at the top of its metrics log
(Lightning's CSV logger starts ``metrics.csv`` over): the rows logged before the checkpoint's
optimizer step, which the resumed run does not log again. Rows a killed segment logged after its
last checkpoint are left out, since the resumed run logs those steps again. The result's wall time
is the sum of the segments.
"""

from __future__ import annotations

import csv
import time
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import CSVLogger, Logger

from lra_snn.results.schema import Segment

SEGMENTS_KEY = "lra_snn_segments"
METRICS_FILENAME = "metrics.csv"  # the CSV logger's file in its log_dir
_EMPTIED_WARNING = "Experiment logs directory .* exists and is not empty"


def _csv_loggers(loggers: Iterable[Logger]) -> list[CSVLogger]:
    return [logger for logger in loggers if isinstance(logger, CSVLogger)]


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _number(text: str) -> int | float:
    """A CSV cell as the number it was logged as (an int stays an int, so the file reads the same)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


class SegmentLog(L.Callback):
    """Keeps the segments and the metrics-log rows of a run across resumes (see the module docstring).

    The current segment starts when the callback is made; ``resume`` adds what the checkpoint that
    the run resumes from recorded.
    """

    def __init__(self) -> None:
        self.started = time.time()
        self.started_at = datetime.now(timezone.utc).isoformat()
        self.earlier: tuple[Segment, ...] = ()
        self.first_step = 0
        self.resumed = False

    def resume(self, checkpoint: Mapping[str, Any]) -> None:
        """Continue after the segments that ``checkpoint`` (the one resumed from) records, from its step."""
        self.earlier = tuple(Segment(**segment) for segment in checkpoint.get(SEGMENTS_KEY, []))
        self.first_step = int(checkpoint.get("global_step", 0))
        self.resumed = True

    def segments(self, last_step: int) -> tuple[Segment, ...]:
        """The earlier segments and this one, which has run until now and reached ``last_step``."""
        now = Segment(self.started_at, time.time() - self.started, self.first_step, last_step)
        return (*self.earlier, now)

    def restore_metric_rows(self, loggers: Iterable[Logger]) -> int:
        """Write the earlier rows (step < the resumed step) back into each CSV log; return how many.

        Call it before anything else uses the loggers: the CSV logger empties its file when first used.
        """
        if not self.resumed:
            return 0
        loggers = _csv_loggers(loggers)
        earlier = {  # every file read before any logger starts its file over
            id(logger): [
                row
                for row in _rows(Path(logger.log_dir) / METRICS_FILENAME)
                if row.get("step") and int(row["step"]) < self.first_step
            ]
            for logger in loggers
        }
        restored = 0
        with warnings.catch_warnings():  # the logger warns that it empties its file: the rows are written back
            warnings.filterwarnings("ignore", message=_EMPTIED_WARNING)
            for logger in loggers:
                for row in earlier[id(logger)]:
                    step = int(row.pop("step"))
                    logger.log_metrics({key: _number(value) for key, value in row.items() if value != ""}, step=step)
                    restored += 1
                logger.save()
        return restored

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        for logger in _csv_loggers(trainer.loggers):
            logger.save()  # the log on disk holds every row up to the checkpoint
        checkpoint[SEGMENTS_KEY] = [segment.to_json() for segment in self.segments(trainer.global_step)]
