"""Runs grouped into leaderboard cells and rows, and the statistics of each.

A cell (``Group``) is one (profile, model, task, identity, code version, data): runs of one model on
one task whose cell-defining settings (``lra_snn.results.variants``), code version and data files (the
digest of their content, ``Run.data_digest``) are the same. Seeds are pooled only inside a cell, so
seeds of other code, another config or other data are never averaged together. Each seed counts once:
its completed result, else its newest one; attempts of a counted
seed that failed or were interrupted after it completed are shown beside it (``Group.beside``),
never instead. A cell's value is the mean +- sample standard deviation (ddof=1) over its seeds.

A row (``Row``) is one model variant of a profile: its cells, one per task. The default cell of a
(profile, model, task) is the identity with the most seeds (ties: the newest); other identities are
variants, labelled by what differs. A model variant whose cells of one task come from several code
versions or data files gets one row per version, labelled by it (``version_label``).

Averages are the named ones of the task table (``conf/tasks.yaml``), taken by the one rule of
``lra_snn.results.averages``: a row missing any task of a set has no average over it.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from lra_snn.config.tasks import ACCURACY, PERPLEXITY, TASK_TABLE, Average
from lra_snn.results.averages import average
from lra_snn.results.runs import Run
from lra_snn.results.variants import changes_only, default_identity, identity_key, variant_label


@dataclass(frozen=True)
class Group:
    """One cell: the runs that count (one per seed) and those shown beside them."""

    profile: str
    model: str
    task: str
    config_hash: str  # the cell hash of its newest run
    runs: tuple[Run, ...]
    beside: tuple[Run, ...]
    code_version: str = ""
    identity: str = ""
    variant: str = ""
    data_digest: str = ""

    def with_status(self, status: str) -> list[Run]:
        """The counted runs (one per seed) with ``status``."""
        return [run for run in self.runs if run.status == status]

    def shown_with_status(self, status: str) -> list[Run]:
        """The counted runs and the runs beside them with ``status``."""
        return [run for run in (*self.runs, *self.beside) if run.status == status]

    @property
    def values(self) -> list[float]:
        return [run.metric for run in self.with_status("completed") if run.metric is not None]

    @property
    def config(self) -> dict[str, Any]:
        """The recorded config of the cell's newest run."""
        return max(self.runs, key=lambda run: run.age).config

    @property
    def data_source(self) -> str:
        """``release``, ``generated, seed 0``, ...: the recorded ``data.source``, "" when not recorded."""
        data = self.config.get("data") or {}
        source = data.get("source")
        if not isinstance(source, str):
            return ""
        if source == "generate":
            seed = data.get("generator_seed")
            return "generated" + (f", seed {seed}" if seed is not None else "")
        return source


@dataclass(frozen=True)
class Row:
    """One model variant of one profile: its label and its cells by task."""

    profile: str
    model: str
    variant: str
    version: str  # "" unless the row is one of several split by code version
    cells: dict[str, Group] = field(default_factory=dict)

    @property
    def label(self) -> str:
        parts = [part for part in (self.variant, self.version) if part]
        return self.model + (f" [{'; '.join(parts)}]" if parts else "")

    def mean(self, task: str) -> float | None:
        group = self.cells.get(task)
        return statistics.fmean(group.values) if group is not None and group.values else None

    def n_averaged_tasks(self) -> int:
        """How many of the tasks that count in an average have completed results."""
        return sum(self.mean(task) is not None for task in TASK_TABLE.averaged)

    def average(self, task_set: Average) -> float | None:
        """The row's ``task_set`` average (``lra_snn.results.averages``), None unless every task has results."""
        return average(task_set, {task: self.mean(task) for task in task_set.tasks})[0]

    def sort_key(self) -> tuple:
        """Best first: the average over the most tasks, then the next, then task by task in column order
        (accuracies higher first, perplexities lower first)."""

        def down(value: float | None) -> float:
            return -value if value is not None else math.inf

        def up(value: float | None) -> float:
            return value if value is not None else math.inf

        widest_first = sorted(TASK_TABLE.averages, key=lambda task_set: -len(task_set.tasks))
        return (
            *(down(self.average(task_set)) for task_set in widest_first),
            *(down(self.mean(task)) for task in TASK_TABLE.ranked_by(ACCURACY)),
            *(up(self.mean(task)) for task in TASK_TABLE.ranked_by(PERPLEXITY)),
            self.label,
        )


def _counted(records: list[Run]) -> Run:
    """The run that counts for one seed: its newest completed result file, else its newest result file."""
    primaries = [run for run in records if not run.attempt] or records
    completed = [run for run in primaries if run.status == "completed"]
    return max(completed or primaries, key=lambda run: run.age)


def _select(runs: list[Run], label: str) -> tuple[list[Run], list[Run], list[str]]:
    """(counted runs, runs beside them, notes on left-out duplicates) of one cell's runs."""
    by_seed: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        by_seed[run.seed].append(run)
    kept, beside, notes = [], [], []
    for seed in sorted(by_seed):
        counted = _counted(by_seed[seed])
        kept.append(counted)
        for other in sorted(by_seed[seed], key=lambda run: run.age):
            if other is counted:
                continue
            later_failure = other.age > counted.age and other.status in ("failed", "interrupted")
            if counted.status == "completed" and later_failure:
                beside.append(other)
            elif not other.attempt:
                when = "older" if other.age < counted.age else "newer"
                notes.append(
                    f"{label}: seed {seed} appears twice in one cell; counted `{counted.path}`, "
                    f"left out the {when} `{other.path}`"
                )
    return kept, beside, notes


def _default_identity(groups: list[Group]) -> str:
    """The default cell's identity among ``groups`` (one profile, model, task): today's default config when
    every group differs from it only in values, else the identity with the most seeds (ties: the newest)."""
    first = groups[0]
    composed = default_identity(first.profile, first.model, first.task)
    if composed is not None and all(changes_only(group.identity, composed) for group in groups):
        return composed
    seeds: dict[str, set[int]] = defaultdict(set)
    newest: dict[str, tuple[float, str]] = {}
    for group in groups:
        seeds[group.identity].update(run.seed for run in group.runs)
        age = max(run.age for run in group.runs)
        newest[group.identity] = max(newest.get(group.identity, age), age)
    return max(seeds, key=lambda key: (len(seeds[key]), newest[key]))


def group_cells(runs: list[Run]) -> tuple[list[Group], list[str]]:
    """Every cell of ``runs`` with its variant label, and the notes on left-out duplicate seeds."""
    buckets: dict[tuple[str, str, str, str, str, str], list[Run]] = defaultdict(list)
    for run in runs:
        key = identity_key(run.config, run.config_hash)
        buckets[(run.profile, run.model, run.task, key, run.code_version, run.data_digest)].append(run)
    cells: list[Group] = []
    notes: list[str] = []
    for (profile, model, task, key, version, data), members in sorted(buckets.items()):
        kept, beside, cell_notes = _select(members, f"{profile}/{model}/{task} ({version})")
        newest = max(kept, key=lambda run: run.age)
        cells.append(
            Group(profile, model, task, newest.config_hash, tuple(kept), tuple(beside), version, key, "", data)
        )
        notes.extend(cell_notes)
    by_task: dict[tuple[str, str, str], list[Group]] = defaultdict(list)
    for cell in cells:
        by_task[(cell.profile, cell.model, cell.task)].append(cell)
    labelled: list[Group] = []
    for same_task in by_task.values():
        default = _default_identity(same_task)
        labelled.extend(replace(cell, variant=variant_label(cell.identity, default)) for cell in same_task)
    return labelled, notes


def group_runs(runs: list[Run]) -> tuple[dict[tuple[str, str, str], Group], list[str]]:
    """The default cell of each (profile, model, task), newest code version, and the notes (for plots)."""
    cells, notes = group_cells(runs)
    chosen: dict[tuple[str, str, str], Group] = {}
    for cell in cells:
        key = (cell.profile, cell.model, cell.task)
        current = chosen.get(key)
        newer = current is None or max(r.age for r in cell.runs) > max(r.age for r in current.runs)
        if not cell.variant and newer:
            chosen[key] = cell
    return dict(sorted(chosen.items())), notes


def build_rows(cells: list[Group]) -> list[Row]:
    """The rows of one profile's cells, best first (``Row.sort_key``)."""
    versions: dict[tuple[str, str, str], set[tuple[str, str]]] = defaultdict(set)
    for cell in cells:
        versions[(cell.model, cell.variant, cell.task)].add((cell.code_version, cell.data_digest))
    split: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for (model, variant, _), found in versions.items():
        if len(found) > 1:
            split[(model, variant)] |= found
    rows: dict[tuple[str, str, str], Row] = {}
    for cell in cells:
        others = split.get((cell.model, cell.variant))
        version = version_label(cell, others) if others else ""
        variant = cell.variant
        if cell.task in rows.get((cell.model, variant, version), Row("", "", "", "")).cells:
            variant = f"{variant} (config {cell.config_hash})"  # two shortened labels that read the same
        row = rows.setdefault((cell.model, variant, version), Row(cell.profile, cell.model, variant, version))
        row.cells[cell.task] = cell
    return sorted(rows.values(), key=Row.sort_key)


def version_label(cell: Group, found: set[tuple[str, str]]) -> str:
    """What tells ``cell``'s row from the other rows of its model variant (``found``: their code versions and
    data digests): its code version, and the data digest's first 8 digits when the data differ among them."""
    if len({data for _, data in found}) == 1:
        return cell.code_version
    return f"{cell.code_version}, data {cell.data_digest[:8] or 'not recorded'}"


def mean_and_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1); the std is None for a single value."""
    if not values:
        raise ValueError("mean_and_std needs at least one value")
    std = statistics.stdev(values) if len(values) >= 2 else None
    return statistics.fmean(values), std


def mean_or_none(values: list[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    present = [value for value in values if value is not None]
    return statistics.fmean(present) if present else None


def majority_rates(groups: list[Group], task: str) -> list[float]:
    """The distinct majority-class rates (%, 2 decimals) reported by completed runs of ``task``."""
    rates = {
        round(run.majority_rate, 2)
        for group in groups
        if group.task == task
        for run in group.with_status("completed")
        if run.majority_rate is not None
    }
    return sorted(rates)
