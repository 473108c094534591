"""Runs grouped into leaderboard cells, and the statistics of each cell.

Runs are grouped by (profile, model, task). When a group's runs carry different ``config_hash``
values, only the runs of the newest config count (the config of the group's most recently
finished run); the older ones are superseded. A seed present twice under one config counts once
(its newest file). A cell's value is the mean +- sample standard deviation (ddof=1) over seeds.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from lra_snn.results.runs import LRA_TASKS, Run


@dataclass(frozen=True)
class Group:
    """The runs that count for one (profile, model, task): newest config, one run per seed."""

    profile: str
    model: str
    task: str
    runs: tuple[Run, ...]
    n_superseded: int

    def with_status(self, status: str) -> list[Run]:
        return [run for run in self.runs if run.status == status]

    @property
    def values(self) -> list[float]:
        return [run.metric for run in self.with_status("completed")]

    @property
    def config_hash(self) -> str:
        return self.runs[0].config_hash


def select_current_runs(runs: list[Run]) -> tuple[list[Run], list[str]]:
    """Keep the runs of the newest config, one per seed (the newest file); note what was dropped."""
    newest = max(runs, key=lambda run: run.age)
    current = sorted((r for r in runs if r.config_hash == newest.config_hash), key=lambda r: r.age)
    stale = [run for run in runs if run.config_hash != newest.config_hash]
    label = "/".join(newest.group)
    notes = []
    if stale:
        hashes = ", ".join(sorted({run.config_hash for run in stale}))
        files = ", ".join(f"`{run.path}`" for run in sorted(stale, key=lambda r: r.age))
        notes.append(
            f"{label}: {len(stale)} run(s) of older config(s) {hashes} superseded by config "
            f"{newest.config_hash} (newest result file) and left out: {files}"
        )
    by_seed: dict[int, Run] = {}
    for run in current:
        if run.seed in by_seed:
            notes.append(
                f"{label}: seed {run.seed} appears twice under config {run.config_hash}; "
                f"counted `{run.path}`, left out the older `{by_seed[run.seed].path}`"
            )
        by_seed[run.seed] = run
    kept = sorted(by_seed.values(), key=lambda run: run.seed)
    return kept, notes


def group_runs(runs: list[Run]) -> tuple[dict[tuple[str, str, str], Group], list[str]]:
    """Groups keyed by (profile, model, task), and the notes on superseded or duplicate runs."""
    buckets: dict[tuple[str, str, str], list[Run]] = defaultdict(list)
    for run in runs:
        buckets[run.group].append(run)
    groups, notes = {}, []
    for key in sorted(buckets):
        kept, group_notes = select_current_runs(buckets[key])
        groups[key] = Group(*key, runs=tuple(kept), n_superseded=len(buckets[key]) - len(kept))
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
