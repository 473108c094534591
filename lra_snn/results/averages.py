"""The one rule by which the board averages a row over a named task set, ours and the published ones alike.

An average (``conf/tasks.yaml``, ``averages``) is the mean of a row's numbers over the tasks that count
in it. A number counts as itself. A published marker (the paper's model failed or did not solve the
task, or nothing was published: ``fail``, ``not solved``, ``-``) counts as the task's ``chance`` value
where the table gives one, as ``chance_source`` counts it. Anything else (a task our row has no
completed result on, a marker on a task without a chance value) leaves the row without that average.
The mean is taken exactly on the numbers as written (a published 60.23 is 60.23, not its binary
neighbour) and shown rounded half up to two decimals, as the papers round theirs (``two_decimals``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from lra_snn.config.tasks import TASK_TABLE, Average, TaskTable


def average(
    task_set: Average, numbers: Mapping[str, float | str | None], table: TaskTable = TASK_TABLE
) -> tuple[float | None, tuple[str, ...]]:
    """(mean of ``numbers`` over ``task_set``, the tasks that stood in at chance); (None, ()) when a task lacks one.

    ``numbers``: task -> a number, a published marker (a string) or None (no result)."""
    counted, stood_in = [], []
    for task in task_set.tasks:
        value = numbers.get(task)
        chance = table.rows[task].chance
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            counted.append(float(value))
        elif isinstance(value, str) and chance is not None:
            counted.append(chance)
            stood_in.append(task)
        else:
            return None, ()
    exact = sum(Fraction(repr(value)) for value in counted) / len(counted)
    return float(exact), tuple(stood_in)


def two_decimals(value: float) -> str:
    """``value`` rounded half up to two decimals (84.325 -> "84.33"), from its shortest decimal spelling."""
    return str(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def list_in_words(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _count_words(count: int) -> str:
    return _NUMBER_WORDS[count] if count < len(_NUMBER_WORDS) else str(count)


def _titles(tasks: tuple[str, ...], table: TaskTable) -> list[str]:
    return [table.rows[task].title for task in tasks]


def averages_prose(table: TaskTable = TASK_TABLE) -> str:
    """What each average counts, for the board's conventions: "A averages t1, t2 and t3; B adds t4"."""
    parts: list[str] = []
    previous: tuple[str, ...] = ()
    for task_set in table.averages:
        added = tuple(task for task in task_set.tasks if task not in previous)
        if previous and set(previous) < set(task_set.tasks):
            parts.append(f"{task_set.title} adds {list_in_words(_titles(added, table))}")
        else:
            parts.append(f"{task_set.title} averages {list_in_words(_titles(task_set.tasks, table))}")
        previous = task_set.tasks
    return "; ".join(parts)


def published_averages_prose(table: TaskTable = TASK_TABLE) -> str:
    """How the published rows' averages are recomputed, average by average (chance stand-ins marked *)."""
    parts = []
    for task_set in table.averages:
        standing = [task for task in task_set.tasks if table.rows[task].chance is not None]
        if not standing:
            parts.append(f"{task_set.title} needs all {_count_words(len(task_set.tasks))} tasks")
            continue
        marks = []
        for task in standing:
            row = table.rows[task]
            marks.append(
                f"* marks a {row.title} that failed, was not solved or has no published number, counted as "
                f"chance ({row.chance:g} %) as {row.chance_source} count it"
            )
        parts.append(f"in {task_set.title}, " + "; ".join(marks))
    return "; ".join(parts)
