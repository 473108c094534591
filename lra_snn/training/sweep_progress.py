"""Where a Hydra multirun stands, from every process that runs its cells: progress lines and outcomes.

The sweeper (``lra_snn.training.sweeper``) writes ``<sweep dir>/sweep_progress.json`` before it launches
anything: the number of cells it launches, how many run at once, and the start time. This callback,
which Hydra calls in whichever process runs a job (the launcher's, a joblib worker, a SLURM task), then

- logs ``sweep: cell k of N started; d done, 3.2 min elapsed, ~5.1 min left`` when a job starts: the time
  left is the mean wall time of the cells finished so far, times the cells not finished, over the cells
  that run at once (so two parallel jobs halve it; before any cell finishes there is no estimate);
- appends the cell's outcome to ``<sweep dir>/sweep_cells.jsonl`` when it ends (one JSON line, written
  with one append): its label, status, ranked metric, message and wall time. The sweeper's summary table
  reads these lines.

A cell's outcome comes from what the cell recorded during the job (``result.json``, or its newest
``attempts/`` file when a completed result was kept); a job that raised before recording anything (a
config that validation refused, a cell another process holds) reads "refused" with the error.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lra_snn.results.record import read_result
from lra_snn.results.schema import ATTEMPTS_DIRNAME, ResultFileError, ResultRecord, primary_metric_name
from lra_snn.training.log_context import cell_label, set_cell_label

log = logging.getLogger(__name__)
STATE_FILE = "sweep_progress.json"
OUTCOMES_FILE = "sweep_cells.jsonl"


@dataclass(frozen=True)
class CellOutcome:
    """One cell of a sweep as its summary shows it (``metric`` in the unit of ``format_metric``)."""

    label: str
    status: str  # a result status, "refused", or "done before" (skipped: completed by an earlier run)
    metric_name: str
    metric: float | None
    seconds: float | None
    message: str = ""


def write_state(sweep_dir: Path, total: int, parallel: int) -> None:
    """Start the sweep's clock: ``total`` cells to run, ``parallel`` of them at once."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    state = {"total": total, "parallel": parallel, "started": time.time()}
    (sweep_dir / STATE_FILE).write_text(json.dumps(state))


def read_outcomes(sweep_dir: Path) -> list[CellOutcome]:
    """The outcomes appended so far, in the order the cells ended (lines cut short by a crash are skipped)."""
    path = sweep_dir / OUTCOMES_FILE
    if not path.exists():
        return []
    outcomes = []
    for line in path.read_text().splitlines():
        try:
            outcomes.append(CellOutcome(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return outcomes


def append_outcome(sweep_dir: Path, outcome: CellOutcome) -> None:
    """Append one line: a single write on a file opened for appending, so parallel jobs never interleave."""
    line = (json.dumps(asdict(outcome)) + "\n").encode()
    fd = os.open(sweep_dir / OUTCOMES_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def minutes(seconds: float) -> str:
    """``4.2 s`` below ten seconds, ``42 s`` below two minutes, else ``3.2 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def progress_line(started: int, total: int, done_seconds: list[float], elapsed_s: float, parallel: int) -> str:
    """``sweep: cell k of N started; d done, elapsed, ~left``: left = mean finished time x cells not finished
    / cells at once (at most the cells not finished)."""
    done = len(done_seconds)
    if done:
        remaining = total - done
        at_once = max(1, min(parallel, remaining))
        left = f"~{minutes(sum(done_seconds) / done * remaining / at_once)} left"
    else:
        left = "time left estimated once a cell finishes"
    return f"sweep: cell {started} of {total} started; {done} done, {minutes(elapsed_s)} elapsed, {left}"


def _newest_record(result_path: Path, since: float) -> ResultRecord | None:
    """The newest record of the cell written at or after ``since``: result.json, else its newest attempt."""
    candidates = [result_path, *sorted((result_path.parent / ATTEMPTS_DIRNAME).glob("*.json"), reverse=True)]
    for path in candidates:
        try:
            record = read_result(path)
        except ResultFileError:
            continue
        if record is not None and record.finished_at >= since:
            return record
    return None


def cell_outcome(config: DictConfig, job_return: JobReturn, started: float) -> CellOutcome:
    """What the job of ``config`` (the task's config) that started at ``started`` left behind."""
    label = cell_label(config)
    metric_name = primary_metric_name(str(config.task_name))
    seconds = time.time() - started
    if job_return.status == JobStatus.FAILED:
        first_line = str(job_return._return_value).strip().splitlines() or [type(job_return._return_value).__name__]
        return CellOutcome(label, "refused", metric_name, None, seconds, first_line[0])
    record = _newest_record(Path(config.paths.result_file), started)
    if record is None:  # nothing new: the cell was completed before and skipped inside the job
        return CellOutcome(label, "done before", metric_name, job_return.return_value, None)
    metric = record.metrics.get(metric_name) if record.status == "completed" else None
    return CellOutcome(label, record.status, metric_name, metric, seconds, record.message)


class SweepProgress(Callback):
    """Hydra callback: the progress line when a multirun job starts, its outcome when it ends."""

    def __init__(self) -> None:
        self._started = math.nan

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.time()
        set_cell_label(cell_label(config))
        state_file = Path(config.hydra.sweep.dir) / STATE_FILE
        if config.hydra.mode.name != "MULTIRUN" or not state_file.exists():
            return
        state = json.loads(state_file.read_text())
        done = [o.seconds for o in read_outcomes(state_file.parent) if o.seconds is not None]
        started = min(config.hydra.job.num + 1, state["total"])
        log.info(progress_line(started, state["total"], done, time.time() - state["started"], state["parallel"]))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if config.hydra.mode.name != "MULTIRUN" or not (sweep_dir / STATE_FILE).exists():
            return
        append_outcome(sweep_dir, cell_outcome(config, job_return, self._started))
