"""The sweep of ``python -m lra_snn.train -m`` (run by the Hydra plugin ``hydra_plugins.lra_snn_sweeper``):
Hydra's basic sweep (every combination of the swept values), which leaves out the cells already completed
before any worker starts and ends with a table.

Each job's config is composed first (as Hydra's basic sweeper does to check the overrides; a job composed
by an earlier sweep with the same code, configs and overrides is looked up in ``PlannedCells`` instead);
a cell whose ``result.json`` says "completed" (its folder is named by the config hash) is not launched when
``skip_completed`` is true and the data files its run read look unchanged (``sources_changed``), so a sweep
whose cells are all complete starts no worker process. The others
are launched by the configured launcher (in batches of ``max_batch_size``). The sweep then prints, and
writes to ``<sweep dir>/summary.md``, one row per cell: its status, ranked metric and wall time, from the
outcomes the jobs appended (``lra_snn.training.sweep_progress``) and the cells left out. A job that raised
still fails the sweep after the table, as with Hydra's own sweeper.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import hydra
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from omegaconf import DictConfig, OmegaConf

from lra_snn.config.locations import project_root
from lra_snn.data.store import stat_signature
from lra_snn.results.atomic import write_atomically
from lra_snn.results.record import code_version, read_result
from lra_snn.results.schema import ResultFileError, ResultRecord, primary_metric_name
from lra_snn.training.log_context import cell_label
from lra_snn.training.report import format_metric
from lra_snn.training.sweep_progress import CellOutcome, minutes, read_outcomes, write_state

log = logging.getLogger(__name__)
SUMMARY_FILE = "summary.md"
CELLS_FILE = "planned_cells.json"  # under the outputs folder: the cells jobs composed to (PlannedCells)


def planned_cell(cfg: DictConfig) -> dict[str, Any]:
    """What the sweep needs of a job's composed config: its cell's label, task, result file and whether a
    completed result is skipped."""
    return {
        "label": cell_label(cfg),
        "task": str(cfg.task_name),
        "result_file": str(cfg.paths.result_file),
        "skip_completed": bool(cfg.skip_completed),
    }


def completed_before(cell: Mapping[str, Any]) -> CellOutcome | None:
    """The planned ``cell`` as "done before" when its result says completed and ``skip_completed`` is true;
    None when the cell has to run (an unreadable result file too: the cell itself then names the fault)."""
    if not cell["skip_completed"]:
        return None
    path = Path(cell["result_file"])
    try:
        record = read_result(path)
    except ResultFileError:
        return None
    if record is None or record.status != "completed" or sources_changed(record):
        return None
    name = primary_metric_name(cell["task"])
    return CellOutcome(cell["label"], "done before", name, record.metrics.get(name), record.wall_time_s, str(path))


def sources_changed(record: ResultRecord) -> bool:
    """Whether a data file the completed run read may have changed since (its files' identities differ, or it
    is gone); the cell then runs, and compares the files' content (``lra_snn.training.cell``)."""
    if record.data is None:
        return False
    return any(stat_signature(path) != signature for path, signature in record.data.sources.items())


class PlannedCells:
    """The cells jobs composed to, kept in ``<output dir>/planned_cells.json`` (beside ``sweeps/``, which holds
    one folder per sweep and nothing else) under a key of everything a composition depends on (the code
    and configs' version, the project root, Hydra's version, the job's overrides), so a sweep run again
    with nothing changed finds its cells without composing a config."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.context = [code_version(), str(project_root()), hydra.__version__]
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = {}
        self.cells: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
        self.changed = False

    def key(self, job: Sequence[str]) -> str:
        return hashlib.sha256(json.dumps([*self.context, list(job)]).encode()).hexdigest()

    def get(self, job: Sequence[str], compose: Callable[[], DictConfig]) -> dict[str, Any]:
        """The planned cell of ``job``: kept from an earlier sweep, else composed now (and kept)."""
        key = self.key(job)
        cell = self.cells.get(key)
        if not isinstance(cell, dict) or set(cell) != {"label", "task", "result_file", "skip_completed"}:
            cell = self.cells[key] = planned_cell(compose())
            self.changed = True
        return cell

    def save(self) -> None:
        if self.changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, json.dumps(self.cells, indent=1, sort_keys=True) + "\n")


def parallel_cells(launcher: DictConfig, cells: int) -> int:
    """How many of ``cells`` the launcher runs at once: joblib's ``n_jobs`` (negative: counted back from the
    CPU count, as joblib does), submitit's ``array_parallelism``, else one at a time."""
    if "n_jobs" in launcher:
        jobs = int(launcher.n_jobs)
        if jobs < 0:
            jobs = max(1, (os.cpu_count() or 1) + 1 + jobs)
    else:
        jobs = int(launcher.get("array_parallelism") or 1)
    return max(1, min(jobs, cells))


def summary_table(outcomes: Sequence[CellOutcome], wall_s: float) -> str:
    """The sweep's cells as a markdown table under a one-line count of their statuses."""
    counts = Counter(outcome.status for outcome in outcomes)
    head = (
        f"sweep summary: {len(outcomes)} cells ({', '.join(f'{n} {s}' for s, n in counts.items())}), {minutes(wall_s)}"
    )
    rows = ["| cell | status | metric | time | note |", "|---|---|---:|---:|---|"]
    for o in outcomes:
        metric = (
            f"{o.metric_name} {format_metric(o.metric_name.split('/')[-1], o.metric)}" if o.metric is not None else "-"
        )
        time_text = minutes(o.seconds) if o.seconds is not None else "-"
        note = o.message.replace("|", "/").replace("\n", " ")[:120]
        rows.append(f"| {o.label} | {o.status} | {metric} | {time_text} | {note} |")
    return "\n".join([head, "", *rows])


def sweep_cells(sweeper: BasicSweeper, arguments: list[str]) -> list[Sequence[JobReturn]]:
    """Run ``sweeper``'s sweep over ``arguments`` (the plugin ``hydra_plugins.lra_snn_sweeper`` calls this):
    compose every job, leave out the completed cells, launch the rest, print and write the summary."""
    assert sweeper.config is not None and sweeper.launcher is not None and sweeper.hydra_context is not None
    started = time.time()
    parser = OverridesParser.create(config_loader=sweeper.hydra_context.config_loader)
    overrides = parser.parse_overrides([*sweeper._parse_config(), *arguments])
    jobs = [job for batch in sweeper.split_arguments(overrides, None) for job in batch]
    sweep_dir = Path(sweeper.config.hydra.sweep.dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(sweeper.config, sweep_dir / "multirun.yaml")

    to_run, done_before = [], []
    planned = PlannedCells(Path(sweeper.config.paths.output_dir) / CELLS_FILE)
    loader = sweeper.hydra_context.config_loader
    for job in jobs:  # composing a job also checks its overrides before anything is launched
        compose = partial(loader.load_sweep_config, sweeper.config, list(job))
        previous = completed_before(planned.get(job, compose))
        if previous is None:
            to_run.append(job)
        else:
            done_before.append(previous)
    if done_before:
        log.info(
            "%d of %d cells completed before: not launched (skip_completed=false trains them again)",
            len(done_before),
            len(jobs),
        )
    planned.save()
    write_state(sweep_dir, len(to_run), parallel_cells(sweeper.config.hydra.launcher, len(to_run)))
    returns = []
    launched = 0
    for batch in sweeper.split_overrides_to_chunks(to_run, sweeper.max_batch_size) if to_run else []:
        returns.append(sweeper.launcher.launch(batch, initial_job_idx=launched))
        launched += len(batch)

    table = summary_table([*done_before, *read_outcomes(sweep_dir)], time.time() - started)
    (sweep_dir / SUMMARY_FILE).write_text(table + "\n")
    print(f"\n{table}\n\n(also in {sweep_dir / SUMMARY_FILE})", flush=True)
    for results in returns:
        for result in results:
            _ = result.return_value  # a job that raised fails the sweep, as with Hydra's own sweeper
    return returns
