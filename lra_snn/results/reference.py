"""The published numbers beside our runs: ``reference.yaml`` (beside this module, packaged with the wheel
and found through ``importlib.resources``: ``PUBLISHED_FILE``) read and checked.

Each published row gives, per task of the task table (``conf/tasks.yaml``), a number (accuracy in %,
or the task's perplexity) or a marker (``fail``, ``not solved``, ``-`` for nothing published; a task
the row leaves out reads ``-``), an LRA average, and the sources (paper and table) that together
cover each published value exactly once.

``recomputed_average`` recomputes a row's averages from its per-task numbers by the board's one rule
(``lra_snn.results.averages``); the paper's own figure is kept beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from lra_snn.config.tasks import PERPLEXITY, TASK_TABLE, TASKS, Average
from lra_snn.results.averages import average
from lra_snn.results.runs import is_number

PUBLISHED_FILE = Path(str(files("lra_snn.results").joinpath("reference.yaml")))  # the published numbers
PUBLISHED_MARKERS = ("fail", "not solved", "-")
NOTHING_PUBLISHED = "-"


class ReferenceFileError(ValueError):
    """``reference.yaml`` does not follow the layout documented at its top."""


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


def recomputed_average(row: PublishedRow, task_set: Average) -> tuple[float | None, bool]:
    """(average of ``row`` over ``task_set``, whether a task stood in at chance); None if a task lacks a number."""
    value, stood_in = average(task_set, row.results)
    return value, bool(stood_in)


def average_over(count: int | None) -> Average | None:
    """The named average that counts ``count`` tasks (a paper's own average names only its task count)."""
    return next((task_set for task_set in TASK_TABLE.averages if len(task_set.tasks) == count), None)


@dataclass(frozen=True)
class Reference:
    rows: tuple[PublishedRow, ...]
    notes: tuple[str, ...]
    other_figures: tuple[tuple[str, Source], ...]


def _expect(condition: bool, where: str, what: str) -> None:
    if not condition:
        raise ReferenceFileError(f"{where}: {what}")


def _string(entry: Any, key: str, where: str) -> str:
    value = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise ReferenceFileError(f"{where}: needs a non-empty string '{key}'")
    return value


def _paper(papers: dict[str, Paper], key: Any, where: str) -> Paper:
    if not isinstance(key, str) or key not in papers:
        raise ReferenceFileError(f"{where}: paper {key!r} is not among the keys under 'papers' ({', '.join(papers)})")
    return papers[key]


def _published_value(value: Any, task: str, where: str) -> float | str:
    """A number (accuracy %, or perplexity for WikiText-103) or one of PUBLISHED_MARKERS."""
    allowed = f"use a number or one of {PUBLISHED_MARKERS}"
    if isinstance(value, str):
        _expect(value in PUBLISHED_MARKERS, where, f"{task} = {value!r}; {allowed}")
        return value
    _expect(is_number(value), where, f"{task} = {value!r}; {allowed}")
    upper = math.inf if TASK_TABLE.rows[task].metric == PERPLEXITY else 100.0
    _expect(0.0 < value <= upper, where, f"{task} = {value} is out of range (a missing number is '-', not 0)")
    return float(value)


def _parse_papers(raw: Any) -> dict[str, Paper]:
    _expect(isinstance(raw, dict) and bool(raw), "papers", "must map paper keys to title/authors/venue/arxiv")
    return {
        key: Paper(*(_string(entry, name, f"papers.{key}") for name in ("title", "authors", "venue", "arxiv")))
        for key, entry in raw.items()
    }


def _parse_source(raw: Any, papers: dict[str, Paper], where: str) -> Source:
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
    _expect(
        set(covered) == published,
        where,
        f"sources cover {sorted(covered)} but the published values are {sorted(published)}",
    )


def _parse_row(raw: Any, papers: dict[str, Paper], index: int) -> PublishedRow:
    where = f"published[{index}]"
    model = _string(raw, "model", where)
    where = f"published[{index}] ({model})"
    results = raw.get("results")
    _expect(isinstance(results, dict), where, f"'results' must map tasks ({', '.join(TASKS)}) to numbers or markers")
    unknown = sorted(set(results) - set(TASKS))
    _expect(not unknown, where, f"'results' names unknown tasks {unknown}; the tasks are {', '.join(TASKS)}")
    avg = raw.get("avg")
    avg_tasks = raw.get("avg_tasks")
    if avg != "-":
        _expect(is_number(avg) and 0 < avg <= 100, where, f"avg = {avg!r}; use a percentage or '-'")
        _expect(
            isinstance(avg_tasks, int) and 1 <= avg_tasks <= len(TASK_TABLE.averaged),
            where,
            f"avg_tasks = {avg_tasks!r}; give how many LRA tasks the published average covers",
        )
    sources = raw.get("sources")
    _expect(isinstance(sources, list), where, "needs a list 'sources' (may be empty when nothing is published)")
    row = PublishedRow(
        model=model,
        paper=_paper(papers, raw.get("paper"), where),
        results={task: _published_value(results.get(task, NOTHING_PUBLISHED), task, where) for task in TASKS},
        avg=avg if avg == "-" else float(avg),
        avg_tasks=avg_tasks if avg != "-" else None,
        sources=tuple(_parse_source(s, papers, f"{where}.sources[{i}]") for i, s in enumerate(sources)),
        note=raw.get("note"),
    )
    _check_coverage(row, where)
    return row


def load_reference(path: Path = PUBLISHED_FILE) -> Reference:
    """Read and check ``reference.yaml``; raise ReferenceFileError naming the file and the entry."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        _expect(isinstance(raw, dict), "top level", "must be a mapping with papers, published, notes")
        papers = _parse_papers(raw.get("papers"))
        published = raw.get("published")
        _expect(isinstance(published, list) and bool(published), "published", "must be a non-empty list of rows")
        rows = tuple(_parse_row(entry, papers, i) for i, entry in enumerate(published))
        notes = raw.get("notes", [])
        _expect(
            isinstance(notes, list) and all(isinstance(n, str) for n in notes), "notes", "must be a list of strings"
        )
        figures = tuple(
            (
                _string(entry, "text", f"other_figures[{i}]"),
                _parse_source({**entry, "covers": []}, papers, f"other_figures[{i}]"),
            )
            for i, entry in enumerate(raw.get("other_figures", []))
        )
    except (OSError, yaml.YAMLError, ReferenceFileError) as err:
        raise ReferenceFileError(f"{path}: {err}") from err
    return Reference(rows=rows, notes=tuple(notes), other_figures=figures)
