"""Which cells the figures draw, what each needs of its runs, and every cell or seed they leave out, with why.

The figures draw, for each (profile, model, task), the cell the leaderboard counts (the default cell
at its newest code version, ``lra_snn.results.board.group_runs``), one run per seed. Every other cell
(a variant of the default config, an older code version) and every counted seed that did not
complete is named in a ``LeftOut`` line; each figure adds what it leaves out for want of its own data
(energy numbers, metrics files).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from lra_snn.results.board import Group, group_cells, group_runs
from lra_snn.results.curves import MetricsFileError, Row, metrics_path, read_metrics_file
from lra_snn.results.runs import Run
from lra_snn.results.schema import ResultFileError, read_record

EVERY_FIGURE = "every figure"


@dataclass(frozen=True)
class LeftOut:
    """A cell (or one seed of it) that a figure does not draw, and why."""

    figure: str  # a figure's file stem, or EVERY_FIGURE
    cell: str  # "<profile>/<task>/<model> config <hash>[ seed <n>]"
    why: str

    def line(self) -> str:
        """The printed line: ``plots: left out of <figure>: <cell>: <why>``."""
        return f"plots: left out of {self.figure}: {self.cell}: {self.why}"


def cell_name(group: Group, seed: int | None = None) -> str:
    """``mini/text/s4d config 7471e93ae5`` (and `` seed 3`` for one seed of it)."""
    name = f"{group.profile}/{group.task}/{group.model} config {group.config_hash}"
    return name if seed is None else f"{name} seed {seed}"


MESSAGE_CHARACTERS = 80  # of a run's message quoted in a left-out line (its result.json holds all of it)


def _why_not_completed(run: Run) -> str:
    """The run's status and the start of its message."""
    message = run.message if len(run.message) <= MESSAGE_CHARACTERS else run.message[:MESSAGE_CHARACTERS] + "..."
    return run.status + (f" ({message})" if message else "")


def drawn_cells(runs: list[Run]) -> tuple[list[Group], list[LeftOut]]:
    """The cells with a completed seed that the figures draw, and every cell or counted seed they leave out."""
    chosen, _ = group_runs(runs)
    cells, _ = group_cells(runs)
    drawn: list[Group] = []
    left_out: list[LeftOut] = []
    for cell in sorted(cells, key=lambda c: (c.profile, c.task, c.model, c.variant, c.code_version)):
        default = chosen.get((cell.profile, cell.model, cell.task))
        if cell.variant:
            left_out.append(LeftOut(EVERY_FIGURE, cell_name(cell), f"variant of the default config ({cell.variant})"))
        elif cell != default:
            newer = default.code_version if default is not None else "?"
            why = f"older code version {cell.code_version} (drawn: {newer})"
            left_out.append(LeftOut(EVERY_FIGURE, cell_name(cell), why))
        elif not cell.with_status("completed"):
            seeds = "; ".join(f"seed {run.seed} {_why_not_completed(run)}" for run in cell.runs)
            left_out.append(LeftOut(EVERY_FIGURE, cell_name(cell), f"no completed run: {seeds}"))
        else:
            drawn.append(cell)
            left_out.extend(
                LeftOut(EVERY_FIGURE, cell_name(cell, run.seed), _why_not_completed(run))
                for run in cell.runs
                if run.status != "completed"
            )
    return drawn, left_out


@dataclass(frozen=True)
class RunDetail:
    """A completed run with what the figures need beyond ``Run``: its chance rate (%) and curves (or why not)."""

    run: Run
    chance_rate: float | None
    rows: list[Row] | None
    skipped: str  # why ``rows`` is None
    metrics_file: Path | None = None  # the file ``rows`` were read from

    @property
    def inputs(self) -> list[Path]:
        """The files this detail was read from: the result file and, when read, its metrics file."""
        return [self.run.path] + ([self.metrics_file] if self.metrics_file is not None else [])


def run_detail(run: Run) -> RunDetail:
    """The chance rate and the metrics file of ``run``, read from its result file."""
    try:
        record = read_record(run.path)
    except ResultFileError as err:  # load_runs read it a moment ago: changed since
        return RunDetail(run, None, None, f"{run.path}: {err}")
    chance = record.metrics.get("test/chance_rate")
    chance_pct = chance * 100.0 if chance is not None and math.isfinite(chance) else None
    try:
        path = metrics_path(run.path, record.extra.get("metrics_file"))
        rows = read_metrics_file(path)
    except MetricsFileError as err:
        return RunDetail(run, chance_pct, None, str(err))
    return RunDetail(run, chance_pct, rows, "", path)


def reference_rates(details: list[RunDetail]) -> dict[str, float]:
    """Chance and majority rate (%) over ``details``, each where some run records it."""
    chance = [d.chance_rate for d in details if d.chance_rate is not None]
    majority = [d.run.majority_rate for d in details if d.run.majority_rate is not None]
    rates = {}
    if chance:
        rates["chance"] = sum(chance) / len(chance)
    if majority:
        rates["majority"] = sum(majority) / len(majority)
    return rates
