"""The task table (``conf/tasks.yaml``): every task's name, title, ranked metric and named averages.

Everything that lists tasks reads it: the board's columns and averages (``lra_snn.results``), the
result-file checks, ``make lra-all TASKS=all`` (``python -m lra_snn.cli.zoo tasks``) and the tests.
A task in no average gets a column of its own and never changes an average.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lra_snn.config.locations import CONF_DIR

TASK_TABLE_FILE = CONF_DIR / "tasks.yaml"
ACCURACY = "test/acc"
PERPLEXITY = "test/ppl"


class TaskTableError(ValueError):
    """The task table does not follow the layout documented at its top; the message names the file and key."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskRow(_Frozen):
    title: str = Field(min_length=1)
    metric: Literal["test/acc", "test/ppl"]
    averages: tuple[str, ...] = ()
    chance: float | None = Field(default=None, gt=0, le=100)
    chance_source: str | None = None

    @model_validator(mode="after")
    def _chance_with_its_source(self) -> TaskRow:
        if (self.chance is None) != (self.chance_source is None):
            raise ValueError("chance and chance_source go together: give both or neither")
        return self


class AverageRow(_Frozen):
    title: str = Field(min_length=1)


class _Table(_Frozen):
    tasks: dict[str, TaskRow] = Field(min_length=1)
    averages: dict[str, AverageRow] = {}

    @model_validator(mode="after")
    def _averages_are_named_and_of_accuracies(self) -> _Table:
        for name, row in self.tasks.items():
            unknown = [average for average in row.averages if average not in self.averages]
            if unknown:
                raise ValueError(f"tasks.{name}.averages names {unknown}, not under 'averages' ({list(self.averages)})")
            if row.averages and row.metric != ACCURACY:
                raise ValueError(f"tasks.{name}: only test/acc tasks are averaged (metric is {row.metric})")
        empty = [name for name in self.averages if not any(name in row.averages for row in self.tasks.values())]
        if empty:
            raise ValueError(f"averages {empty} count no task: list them in a task's 'averages' or remove them")
        return self


@dataclass(frozen=True)
class Average:
    """A named average: its title and the tasks it counts, in column order."""

    name: str
    title: str
    tasks: tuple[str, ...]


@dataclass(frozen=True)
class TaskTable:
    rows: Mapping[str, TaskRow]
    averages: tuple[Average, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.rows)

    def ranked_by(self, metric: str) -> tuple[str, ...]:
        """The tasks ranked by ``metric`` (``test/acc`` or ``test/ppl``), in column order."""
        return tuple(name for name, row in self.rows.items() if row.metric == metric)

    @property
    def averaged(self) -> tuple[str, ...]:
        """The tasks that count in at least one average, in column order."""
        return tuple(name for name, row in self.rows.items() if row.averages)

    def column_title(self, task: str) -> str:
        """The task's heading: its title, with ``(ppl)`` for a perplexity."""
        row = self.rows[task]
        return row.title + (" (ppl)" if row.metric == PERPLEXITY else "")


def parse_task_table(raw: Any, where: str) -> TaskTable:
    """The checked table of a decoded ``tasks.yaml``; TaskTableError naming ``where`` and the bad key."""
    try:
        table = _Table.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}" for e in err.errors(include_url=False)
        )
        raise TaskTableError(f"{where}: {problems}") from None
    averages = tuple(
        Average(name, row.title, tuple(task for task, entry in table.tasks.items() if name in entry.averages))
        for name, row in table.averages.items()
    )
    return TaskTable(rows=dict(table.tasks), averages=averages)


def load_task_table(path: Path = TASK_TABLE_FILE) -> TaskTable:
    """Read and check the task table at ``path``."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise TaskTableError(f"{path}: {err}") from err
    return parse_task_table(raw, str(path))


TASK_TABLE = load_task_table()
TASKS = TASK_TABLE.names
