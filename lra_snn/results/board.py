"""Runs grouped into leaderboard cells, and the statistics of each cell.

Runs are grouped by (profile, model, task). A group shows one config: the newest config that has
completed runs (the config of the group's most recently finished completed run), or, when no run
completed, the newest config. Each seed of that config counts once: its completed result, else its
newest one. Nothing that did not complete can replace completed seeds; it is shown beside them
instead (``Group.beside``): runs of newer configs that did not complete, and attempts of a counted
seed that failed or were interrupted after it completed. Runs of other configs are superseded. A
cell's value is the mean +- sample standard deviation (ddof=1) over the counted seeds.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from lra_snn.results.runs import LRA_TASKS, Run


@dataclass(frozen=True)
class Group:
    """What one (profile, model, task) shows: the runs that count (one per seed of one config) and those beside."""

    profile: str
    model: str
    task: str
    config_hash: str
    runs: tuple[Run, ...]
    beside: tuple[Run, ...]
    n_superseded: int

    def with_status(self, status: str) -> list[Run]:
        """The counted runs (one per seed) with ``status``."""
        return [run for run in self.runs if run.status == status]

    def shown_with_status(self, status: str) -> list[Run]:
        """The counted runs and the runs beside them with ``status``."""
        return [run for run in (*self.runs, *self.beside) if run.status == status]

    @property
    def values(self) -> list[float]:
        return [run.metric for run in self.with_status("completed") if run.metric is not None]


def _counted(records: list[Run]) -> Run:
    """The run that counts for one seed: its newest completed result file, else its newest result file."""
    primaries = [run for run in records if not run.attempt] or records
    completed = [run for run in primaries if run.status == "completed"]
    return max(completed or primaries, key=lambda run: run.age)


def select_current_runs(runs: list[Run]) -> tuple[list[Run], list[Run], int, list[str]]:
    """(counted runs, runs shown beside them, number of superseded runs, notes on what was left out)."""
    primaries = [run for run in runs if not run.attempt] or runs
    completed = [run for run in primaries if run.status == "completed"]
    shown = max(completed or primaries, key=lambda run: run.age)
    config = shown.config_hash
    label = "/".join(shown.group)
    notes: list[str] = []

    by_seed: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        if run.config_hash == config:
            by_seed[run.seed].append(run)
    kept, beside = [], []
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
                    f"{label}: seed {seed} appears twice under config {config}; "
                    f"counted `{counted.path}`, left out the {when} `{other.path}`"
                )

    newest_shown = max(run.age for run in primaries if run.config_hash == config)
    newer = [
        run for run in primaries if run.config_hash != config and run.age > newest_shown and run.status != "completed"
    ]
    beside.extend(sorted(newer, key=lambda run: run.age))
    stale = [run for run in primaries if run.config_hash != config and all(run is not n for n in newer)]
    if stale:
        hashes = ", ".join(sorted({run.config_hash for run in stale}))
        files = ", ".join(f"`{run.path}`" for run in sorted(stale, key=lambda r: r.age))
        basis = "newest config with completed runs" if completed else "newest result file"
        notes.append(
            f"{label}: {len(stale)} run(s) of older config(s) {hashes} superseded by config "
            f"{config} ({basis}) and left out: {files}"
        )
    return kept, beside, len(stale), notes


def group_runs(runs: list[Run]) -> tuple[dict[tuple[str, str, str], Group], list[str]]:
    """Groups keyed by (profile, model, task), and the notes on superseded or duplicate runs."""
    buckets: dict[tuple[str, str, str], list[Run]] = defaultdict(list)
    for run in runs:
        buckets[run.group].append(run)
    groups, notes = {}, []
    for key in sorted(buckets):
        kept, beside, n_superseded, group_notes = select_current_runs(buckets[key])
        groups[key] = Group(
            *key, config_hash=kept[0].config_hash, runs=tuple(kept), beside=tuple(beside), n_superseded=n_superseded
        )
        notes.extend(group_notes)
    return groups, notes


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


def lra_average(groups_of_model: dict[str, Group]) -> tuple[float, int] | None:
    """Mean of the model's LRA task means over the tasks it has completed runs for, and their count."""
    task_means = [
        statistics.fmean(groups_of_model[task].values)
        for task in LRA_TASKS
        if task in groups_of_model and groups_of_model[task].values
    ]
    if not task_means:
        return None
    return statistics.fmean(task_means), len(task_means)


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
