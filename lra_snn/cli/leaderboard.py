"""Leaderboard: every run's ``result.json`` -> ``leaderboard.md`` and ``leaderboard.csv``.

Our cells are the mean +- sample standard deviation (ddof=1) over seeds of the test metric at the
best-validation checkpoint (recipes.md: accuracy in %, WikiText-103 perplexity), with the number of
seeds. The published rows beside them come from ``results/reference.yaml`` (recipes.md, "Published
LRA accuracy"), each number citing its paper. Rules:

- runs are grouped by (profile, model, task); one table per profile (full, mini, tiny), never mixed;
- when a group's runs carry different ``config_hash`` values, only the runs of the newest config
  count (the config of the group's most recently modified result file); the older runs are listed
  as superseded in the notes. A seed present twice under one config counts once (its newest file);
- ``no_data`` cells read "no data: make data-<task>"; failed runs, and completed runs whose test
  metric or loss is not finite, are marked "failed (n)" with their messages in the notes;
- a file that is not JSON, has another schema version or lacks a required field is listed in the
  notes and skipped; the rest still builds.

CLI: ``python -m lra_snn.cli.leaderboard [--results DIR] [--out DIR] [--reference FILE] [--profile P]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

SCHEMA_VERSION = 1
RESULT_FILENAME = "result.json"
LRA_TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
LM_TASK = "wikitext103"
TASKS = LRA_TASKS + (LM_TASK,)
TASK_TITLES = {
    "listops": "ListOps",
    "text": "Text",
    "retrieval": "Retrieval",
    "image": "Image",
    "pathfinder": "Pathfinder",
    "pathx": "Path-X",
    "wikitext103": "WikiText-103 (ppl)",
}
AVERAGE_TITLE = "LRA avg"
PROFILES = ("full", "mini", "tiny")
STATUSES = ("completed", "failed", "no_data")
PUBLISHED_MARKERS = ("fail", "not solved", "-")
MAX_MESSAGE_CHARS = 300
CSV_COLUMNS = (
    "profile", "model", "task", "metric", "status", "mean", "std", "n_seeds", "seeds", "n_failed",
    "majority_rate_pct", "firing_rate_pct", "energy_mj", "n_params", "wall_time_s",
    "config_hash", "git_commits", "n_superseded",
)
_REQUIRED_FIELDS = {
    "schema_version": int, "status": str, "task": str, "model": str, "seed": int,
    "profile": str, "config_hash": str, "git_commit": str,
}


class ResultFileError(ValueError):
    """A result file that cannot be used: not JSON, another schema version, a missing or bad field."""


class ReferenceFileError(ValueError):
    """``reference.yaml`` does not follow the layout documented at its top."""


# --------------------------------------------------------------------------- result files


@dataclass(frozen=True)
class Run:
    """One result file. Percentages (accuracy, majority and firing rates) are already x100."""

    path: Path
    mtime: float
    status: str
    message: str
    task: str
    model: str
    seed: int
    profile: str
    config_hash: str
    git_commit: str
    metric: float | None  # test accuracy in % (LRA) or test perplexity (LM); None unless completed
    majority_rate: float | None
    firing_rate: float | None
    energy_mj: float | None
    n_params: int | None
    wall_time_s: float | None

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.profile, self.model, self.task)

    @property
    def age(self) -> tuple[float, str]:
        """Sort key: modification time, the path breaking ties so the order is deterministic."""
        return (self.mtime, str(self.path))


def short_commit(commit: str) -> str:
    """The first 12 hex digits of a commit, keeping a "+dirty" mark (uncommitted changes at run time)."""
    sha, dirty, _ = commit.partition("+dirty")
    return sha[:12] + ("+dirty" if dirty else "")


def primary_metric_name(task: str) -> str:
    """The metric a task is ranked by: test perplexity for language modelling, else test accuracy."""
    return "test/ppl" if task == LM_TASK else "test/acc"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require_field(data: dict, name: str, kind: type) -> object:
    if name not in data:
        raise ResultFileError(f"missing required field '{name}'")
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ResultFileError(f"field '{name}' is {value!r}, expected {kind.__name__}")
    return value


def _require_choice(data: dict, name: str, choices: tuple[str, ...]) -> str:
    value = data[name]
    if value not in choices:
        raise ResultFileError(f"field '{name}' is {value!r}, expected one of {', '.join(choices)}")
    return value


def _optional_number(mapping: dict, name: str, scale: float = 1.0) -> float | None:
    """``mapping[name] * scale`` when it is a finite number, else None (absent, null or NaN)."""
    value = mapping.get(name)
    if _is_number(value) and math.isfinite(value):
        return value * scale
    return None


def _read_json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultFileError(f"not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ResultFileError(f"top level is a JSON {type(data).__name__}, expected an object")
    return data


def _check_schema_version(data: dict) -> None:
    version = _require_field(data, "schema_version", int)
    if version != SCHEMA_VERSION:
        raise ResultFileError(
            f"schema_version {version} is not supported; this leaderboard reads version "
            f"{SCHEMA_VERSION} (rerun the run, or convert the file to version {SCHEMA_VERSION})"
        )


def _completed_metric(metrics: dict, task: str) -> tuple[float | None, str]:
    """The run's ranked metric (accuracy in %), or (None, why) when the run diverged."""
    name = primary_metric_name(task)
    value = metrics.get(name)
    if not _is_number(value):
        raise ResultFileError(f"completed run lacks a number in metrics['{name}'] (got {value!r})")
    if not math.isfinite(value):
        return None, f"{name} is {value} (diverged)"
    loss = metrics.get("test/loss")
    if _is_number(loss) and not math.isfinite(loss):
        return None, f"test/loss is {loss} (diverged)"
    if name == "test/acc":
        if not 0.0 <= value <= 1.0:
            raise ResultFileError(
                f"metrics['test/acc'] = {value} is not a fraction in [0, 1] (percent written by mistake?)"
            )
        return value * 100.0, ""
    return float(value), ""


def _finished_at(data: dict, path: Path) -> float:
    """When the run ended: its ``finished_at`` (ISO 8601) where recorded, else the file's mtime."""
    stamp = data.get("finished_at")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).timestamp()
        except ValueError as err:
            raise ResultFileError(f"field 'finished_at' is {stamp!r}, not an ISO 8601 time") from err
    return path.stat().st_mtime


def read_result_file(path: Path) -> Run:
    """Parse and check one ``result.json`` (schema version 1); raise ResultFileError naming the fault."""
    data = _read_json_object(path)
    _check_schema_version(data)
    for name, kind in _REQUIRED_FIELDS.items():
        _require_field(data, name, kind)
    status = _require_choice(data, "status", STATUSES)
    task = _require_choice(data, "task", TASKS)
    _require_choice(data, "profile", PROFILES)
    message = ""
    if status != "completed":
        message = _require_field(data, "message", str)
    metrics = data.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise ResultFileError(f"field 'metrics' is {metrics!r}, expected an object")
    metric = None
    if status == "completed":
        metric, why = _completed_metric(metrics, task)
        if metric is None:
            status, message = "failed", why
    n_params = data.get("n_params")
    return Run(
        path=path,
        mtime=_finished_at(data, path),
        status=status,
        message=message,
        task=task,
        model=data["model"],
        seed=data["seed"],
        profile=data["profile"],
        config_hash=data["config_hash"],
        git_commit=data["git_commit"],
        metric=metric,
        majority_rate=_optional_number(metrics, "test/majority_rate", 100.0),
        firing_rate=_optional_number(metrics, "test/firing_rate", 100.0),
        energy_mj=_optional_number(metrics, "test/energy_mj"),
        n_params=n_params if isinstance(n_params, int) and not isinstance(n_params, bool) else None,
        wall_time_s=_optional_number(data, "wall_time_s"),
    )


def load_runs(results_dir: Path) -> tuple[list[Run], list[str]]:
    """Every usable result file under ``results_dir`` and one note per file that was skipped."""
    runs, problems = [], []
    for path in sorted(results_dir.rglob(RESULT_FILENAME)):
        try:
            runs.append(read_result_file(path))
        except ResultFileError as err:
            problems.append(f"skipped `{path}`: {err}")
    return runs, problems


# --------------------------------------------------------------------------- grouping


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


# --------------------------------------------------------------------------- statistics


def mean_and_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1); the std is None for a single value."""
    if not values:
        raise ValueError("mean_and_std needs at least one value")
    std = statistics.stdev(values) if len(values) >= 2 else None
    return statistics.fmean(values), std


def format_measure(values: list[float]) -> str:
    """``59.20 +- 0.31 (3)``; one seed shows no spread: ``59.20 (1)``."""
    mean, std = mean_and_std(values)
    spread = f" +- {std:.2f}" if std is not None else ""
    return f"{mean:.2f}{spread} ({len(values)})"


def cell_text(group: Group | None, task: str) -> str:
    """What one table cell says for a group: its results, its failures, or that its data is missing."""
    if group is None:
        return "not run"
    parts = []
    if group.values:
        parts.append(format_measure(group.values))
    n_failed = len(group.with_status("failed"))
    if n_failed:
        parts.append(f"failed ({n_failed})")
    return ", ".join(parts) if parts else f"no data: make data-{task}"


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


def format_average(average: tuple[float, int] | None) -> str:
    if average is None:
        return "-"
    value, n_tasks = average
    return f"{value:.2f} ({n_tasks} task{'s' if n_tasks != 1 else ''})"


def _mean_or_none(values: list[float | None]) -> float | None:
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


# --------------------------------------------------------------------------- markdown


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(row) for row in rows)])


def one_line(text: str) -> str:
    """Whitespace collapsed; a long message keeps its end (where a traceback names the error)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_MESSAGE_CHARS else "..." + flat[-(MAX_MESSAGE_CHARS - 3):]


def _header() -> list[str]:
    return ["Model", *(TASK_TITLES[t] for t in LRA_TASKS), AVERAGE_TITLE, TASK_TITLES[LM_TASK]]


def _results_row(model: str, by_task: dict[str, Group]) -> list[str]:
    return [
        model,
        *(cell_text(by_task.get(task), task) for task in LRA_TASKS),
        format_average(lra_average(by_task)),
        cell_text(by_task.get(LM_TASK), LM_TASK),
    ]


def _majority_row(groups: list[Group]) -> tuple[list[str], list[str]]:
    """The table's last row (majority-class rate of each test split) and notes on disagreements."""
    cells, notes = [], []
    for task in LRA_TASKS:
        rates = majority_rates(groups, task)
        if not rates:
            cells.append("-")
        elif len(rates) == 1:
            cells.append(f"{rates[0]:.2f}")
        else:
            cells.append(f"{rates[0]:.2f}-{rates[-1]:.2f}")
            notes.append(
                f"{groups[0].profile}/{task}: runs report different test majority-class rates "
                f"({', '.join(f'{r:.2f}' for r in rates)}); their test splits differ"
            )
    return ["*majority class (test)*", *cells, "-", "-"], notes


def format_energy(millijoules: float) -> str:
    """Energy per example with 3 significant digits, in mJ, or in uJ below 1 mJ."""
    return f"{millijoules:.3g} mJ" if millijoules >= 1 else f"{millijoules * 1000:.3g} uJ"


def _activity_cell(group: Group | None) -> str:
    completed = group.with_status("completed") if group else []
    firing = _mean_or_none([run.firing_rate for run in completed])
    energy = _mean_or_none([run.energy_mj for run in completed])
    if firing is None and energy is None:
        return "-"
    firing_text = f"{firing:.2f} %" if firing is not None else "-"
    energy_text = format_energy(energy) if energy is not None else "-"
    return f"{firing_text} / {energy_text}"


def _activity_table(models: dict[str, dict[str, Group]]) -> str | None:
    """Firing rate and estimated energy per cell, or None when no run of the profile reports them."""
    rows = [[model, *(_activity_cell(by_task.get(task)) for task in TASKS)] for model, by_task in models.items()]
    rows = [row for row in rows if any(cell != "-" for cell in row[1:])]
    if not rows:
        return None
    return markdown_table(["Model", *(TASK_TITLES[t] for t in LRA_TASKS), "WikiText-103"], rows)


def _provenance_table(groups: list[Group]) -> str:
    rows = []
    for group in groups:
        commits = sorted({short_commit(run.git_commit) for run in group.runs})
        seeds = ", ".join(str(run.seed) for run in group.runs)
        rows.append([group.model, TASK_TITLES[group.task], seeds, group.config_hash, ", ".join(commits)])
    return markdown_table(["Model", "Task", "Seeds", "Config hash", "Commit(s)"], rows)


def render_profile(profile: str, groups: list[Group]) -> tuple[str, list[str]]:
    """One profile's section (results, activity, provenance) and its notes."""
    groups = sorted(groups, key=lambda g: (g.model, TASKS.index(g.task)))
    models: dict[str, dict[str, Group]] = defaultdict(dict)
    for group in groups:
        models[group.model][group.task] = group
    rows = [_results_row(model, by_task) for model, by_task in models.items()]
    majority_row, notes = _majority_row(groups)
    parts = [f"## Profile: {profile}", markdown_table(_header(), [*rows, majority_row])]
    activity = _activity_table(models)
    if activity:
        parts += [f"### Firing rate and estimated energy ({profile})", activity]
    parts += [f"### Provenance ({profile})", _provenance_table(groups)]
    return "\n\n".join(parts), notes


def run_notes(groups: list[Group]) -> list[str]:
    """One note per failed run (message and file) and per group without data."""
    notes = []
    for group in groups:
        label = f"{group.profile}/{group.model}/{group.task}"
        for run in group.with_status("failed"):
            notes.append(f"{label} seed {run.seed} failed: {one_line(run.message)} (`{run.path}`)")
        if not group.values and not group.with_status("failed"):
            run = group.with_status("no_data")[0]
            notes.append(f"{label}: {one_line(run.message)} (`{run.path}`)")
    return notes


# --------------------------------------------------------------------------- published rows


@dataclass(frozen=True)
class Paper:
    title: str
    authors: str
    venue: str
    arxiv: str

    def cite(self) -> str:
        return f'{self.authors}, "{self.title}", {self.venue}, arXiv:{self.arxiv}'


@dataclass(frozen=True)
class Source:
    paper: Paper
    table: str
    covers: tuple[str, ...]


@dataclass(frozen=True)
class PublishedRow:
    model: str
    paper: Paper
    results: dict[str, float | str]
    avg: float | str
    avg_tasks: int | None
    sources: tuple[Source, ...]
    note: str | None


@dataclass(frozen=True)
class Reference:
    rows: tuple[PublishedRow, ...]
    notes: tuple[str, ...]
    other_figures: tuple[tuple[str, Source], ...]


def _expect(condition: bool, where: str, what: str) -> None:
    if not condition:
        raise ReferenceFileError(f"{where}: {what}")


def _string(entry: dict, key: str, where: str) -> str:
    value = entry.get(key) if isinstance(entry, dict) else None
    _expect(isinstance(value, str) and value.strip() != "", where, f"needs a non-empty string '{key}'")
    return value


def _paper(papers: dict[str, Paper], key: object, where: str) -> Paper:
    _expect(key in papers, where, f"paper {key!r} is not among the keys under 'papers' ({', '.join(papers)})")
    return papers[key]


def _published_value(value: object, task: str, where: str) -> float | str:
    """A number (accuracy %, or perplexity for WikiText-103) or one of PUBLISHED_MARKERS."""
    allowed = f"use a number or one of {PUBLISHED_MARKERS}"
    if isinstance(value, str):
        _expect(value in PUBLISHED_MARKERS, where, f"{task} = {value!r}; {allowed}")
        return value
    _expect(_is_number(value), where, f"{task} = {value!r}; {allowed}")
    upper = math.inf if task == LM_TASK else 100.0
    _expect(0.0 < value <= upper, where, f"{task} = {value} is out of range (a missing number is '-', not 0)")
    return float(value)


def _parse_papers(raw: object) -> dict[str, Paper]:
    _expect(isinstance(raw, dict) and raw, "papers", "must map paper keys to title/authors/venue/arxiv")
    return {
        key: Paper(*(_string(entry, name, f"papers.{key}") for name in ("title", "authors", "venue", "arxiv")))
        for key, entry in raw.items()
    }


def _parse_source(raw: object, papers: dict[str, Paper], where: str) -> Source:
    _expect(isinstance(raw, dict), where, "a source is a mapping with paper, table and covers")
    covers = raw.get("covers")
    _expect(isinstance(covers, list), where, "needs a list 'covers' (task keys and/or 'avg')")
    unknown = [key for key in covers if key not in (*TASKS, "avg")]
    _expect(not unknown, where, f"covers unknown keys {unknown}; use {', '.join(TASKS)} or avg")
    return Source(_paper(papers, raw.get("paper"), where), _string(raw, "table", where), tuple(covers))


def _check_coverage(row: PublishedRow, where: str) -> None:
    """Every published number and fail / not solved marker is covered by exactly one source."""
    covered = [key for source in row.sources for key in source.covers]
    repeated = sorted({key for key in covered if covered.count(key) > 1})
    _expect(not repeated, where, f"{repeated} covered by more than one source")
    published = {task for task, value in row.results.items() if value != "-"}
    if row.avg != "-":
        published.add("avg")
    _expect(set(covered) == published, where,
            f"sources cover {sorted(covered)} but the published values are {sorted(published)}")


def _parse_row(raw: object, papers: dict[str, Paper], index: int) -> PublishedRow:
    where = f"published[{index}]"
    model = _string(raw, "model", where)
    where = f"published[{index}] ({model})"
    results = raw.get("results")
    _expect(isinstance(results, dict) and set(results) == set(TASKS), where,
            f"'results' must list every task ({', '.join(TASKS)}), with '-' where nothing is published")
    avg = raw.get("avg")
    avg_tasks = raw.get("avg_tasks")
    if avg != "-":
        _expect(_is_number(avg) and 0 < avg <= 100, where, f"avg = {avg!r}; use a percentage or '-'")
        _expect(isinstance(avg_tasks, int) and 1 <= avg_tasks <= len(LRA_TASKS), where,
                f"avg_tasks = {avg_tasks!r}; give how many LRA tasks the published average covers")
    sources = raw.get("sources")
    _expect(isinstance(sources, list), where, "needs a list 'sources' (may be empty when nothing is published)")
    row = PublishedRow(
        model=model,
        paper=_paper(papers, raw.get("paper"), where),
        results={task: _published_value(results[task], task, where) for task in TASKS},
        avg=avg if avg == "-" else float(avg),
        avg_tasks=avg_tasks if avg != "-" else None,
        sources=tuple(_parse_source(s, papers, f"{where}.sources[{i}]") for i, s in enumerate(sources)),
        note=raw.get("note"),
    )
    _check_coverage(row, where)
    return row


def load_reference(path: Path) -> Reference:
    """Read and check ``reference.yaml``; raise ReferenceFileError naming the file and the entry."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        _expect(isinstance(raw, dict), "top level", "must be a mapping with papers, published, notes")
        papers = _parse_papers(raw.get("papers"))
        published = raw.get("published")
        _expect(isinstance(published, list) and published, "published", "must be a non-empty list of rows")
        rows = tuple(_parse_row(entry, papers, i) for i, entry in enumerate(published))
        notes = raw.get("notes", [])
        _expect(isinstance(notes, list) and all(isinstance(n, str) for n in notes),
                "notes", "must be a list of strings")
        figures = tuple(
            (_string(entry, "text", f"other_figures[{i}]"),
             _parse_source({**entry, "covers": []}, papers, f"other_figures[{i}]"))
            for i, entry in enumerate(raw.get("other_figures", []))
        )
    except (OSError, yaml.YAMLError, ReferenceFileError) as err:
        raise ReferenceFileError(f"{path}: {err}") from err
    return Reference(rows=rows, notes=tuple(notes), other_figures=figures)


def _published_cell(value: float | str) -> str:
    return f"{value:.2f}" if isinstance(value, float) else value


def _source_line(row: PublishedRow) -> str:
    if not row.sources:
        return f"**{row.model}**: {row.paper.cite()}. {row.note or ''}".rstrip()
    cited = []
    for source in row.sources:
        keys = ", ".join(TASK_TITLES.get(key, AVERAGE_TITLE) for key in source.covers)
        prefix = "" if len(row.sources) == 1 else f"{keys} from "
        cited.append(f"{prefix}{source.paper.cite()}, {source.table}")
    note = f" {row.note}" if row.note else ""
    return f"**{row.model}**: " + "; ".join(cited) + "." + note


def render_published(reference: Reference) -> str:
    """The published table, its notes, one source line per row and the other published figures."""
    rows = []
    for row in reference.rows:
        avg = "-" if row.avg == "-" else f"{row.avg:.2f} ({row.avg_tasks} tasks)"
        rows.append([row.model, *(_published_cell(row.results[t]) for t in LRA_TASKS), avg,
                     _published_cell(row.results[LM_TASK])])
    parts = [
        "## Published (from the papers, not run here)",
        markdown_table(_header(), rows),
        "\n".join(f"- {note}" for note in reference.notes),
        "Sources:\n\n" + "\n".join(f"- {_source_line(row)}" for row in reference.rows),
    ]
    if reference.other_figures:
        figures = "\n".join(f"- {text} ({source.paper.cite()}, {source.table})."
                            for text, source in reference.other_figures)
        parts.append("Other published figures:\n\n" + figures)
    return "\n\n".join(part for part in parts if part)


# --------------------------------------------------------------------------- CSV


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _significant(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else float(f"{value:.{digits}g}")


def csv_row(group: Group) -> dict:
    """One CSV row: everything needed to cite and reproduce a (profile, model, task) cell."""
    values = group.values
    mean, std = mean_and_std(values) if values else (None, None)
    completed = group.with_status("completed")
    status = "completed" if values else ("failed" if group.with_status("failed") else "no_data")
    n_params = sorted({run.n_params for run in group.runs if run.n_params is not None})
    return {
        "profile": group.profile,
        "model": group.model,
        "task": group.task,
        "metric": "test/ppl" if group.task == LM_TASK else "test/acc (%)",
        "status": status,
        "mean": _rounded(mean),
        "std": _rounded(std),
        "n_seeds": len(values),
        "seeds": ";".join(str(run.seed) for run in completed),
        "n_failed": len(group.with_status("failed")),
        "majority_rate_pct": _rounded(_mean_or_none([run.majority_rate for run in completed])),
        "firing_rate_pct": _rounded(_mean_or_none([run.firing_rate for run in completed])),
        "energy_mj": _significant(_mean_or_none([run.energy_mj for run in completed])),
        "n_params": ";".join(str(n) for n in n_params),
        "wall_time_s": _rounded(_mean_or_none([run.wall_time_s for run in completed]), 1),
        "config_hash": group.config_hash,
        "git_commits": ";".join(sorted({run.git_commit for run in group.runs})),
        "n_superseded": group.n_superseded,
    }


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: ("" if value is None else value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


# --------------------------------------------------------------------------- assembly


def _profile_order(profile: str) -> int:
    return PROFILES.index(profile)


def build_leaderboard(
    results_dir: str | Path, reference_path: str | Path, profile: str | None = None
) -> tuple[str, list[dict]]:
    """The leaderboard markdown and its CSV rows, from the result files under ``results_dir``.

    ``profile`` keeps only that profile's runs. A missing or invalid reference file is reported in
    the markdown instead of the published rows; the tables of our runs still build.
    """
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    results_dir = Path(results_dir)
    runs, file_notes = load_runs(results_dir)
    if profile is not None:
        runs = [run for run in runs if run.profile == profile]
    groups, selection_notes = group_runs(runs)
    by_profile: dict[str, list[Group]] = defaultdict(list)
    for group in groups.values():
        by_profile[group.profile].append(group)

    parts = [
        "# Leaderboard",
        f"Built from {len(runs)} usable result file(s) under `{results_dir}`"
        + (f" (profile {profile} only)" if profile else "")
        + (f"; {len(file_notes)} more skipped (see Notes)" if file_notes else "")
        + ". Cells: test accuracy (%) at the best-validation checkpoint, mean +- sample std over "
        "seeds (number of seeds); WikiText-103: test perplexity (lower is better). LRA avg: mean of "
        "the model's LRA task means over the tasks it has completed runs for.",
    ]
    notes = [*file_notes, *selection_notes]
    if not by_profile:
        parts.append(f"**No results yet under `{results_dir}`.**")
    for name in sorted(by_profile, key=_profile_order):
        section, profile_notes = render_profile(name, by_profile[name])
        parts.append(section)
        notes.extend(profile_notes)
    notes.extend(run_notes(list(groups.values())))

    try:
        parts.append(render_published(load_reference(Path(reference_path))))
    except ReferenceFileError as err:
        parts.append(f"## Published\n\nPublished numbers could not be read: {err}")
    parts.append("## Notes\n\n" + ("\n".join(f"- {note}" for note in notes) if notes else "None."))

    rows = [csv_row(group) for group in sorted(
        groups.values(), key=lambda g: (_profile_order(g.profile), g.model, TASKS.index(g.task)))]
    return "\n\n".join(parts) + "\n", rows


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_leaderboard(markdown: str, rows: list[dict], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``leaderboard.md`` and ``leaderboard.csv`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    md_path, csv_path = out_dir / "leaderboard.md", out_dir / "leaderboard.csv"
    write_atomically(md_path, markdown)
    write_atomically(csv_path, csv_text(rows))
    return md_path, csv_path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lra_snn.cli.leaderboard",
        description="Turn result.json files into results/leaderboard.md and .csv beside the published numbers.",
    )
    parser.add_argument("--results", default="results/runs",
                        help="folder searched recursively for result.json")
    parser.add_argument("--out", default="results",
                        help="folder that receives leaderboard.md and leaderboard.csv")
    parser.add_argument("--reference", default="results/reference.yaml", help="published numbers with citations")
    parser.add_argument("--profile", choices=PROFILES, help="keep only this profile's runs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    markdown, rows = build_leaderboard(args.results, args.reference, profile=args.profile)
    write_leaderboard(markdown, rows, args.out)
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
