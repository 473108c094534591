"""Result files read back as checked ``Run`` records, ready to be grouped and ranked.

A file that is not JSON, has another schema version or lacks a required field raises
``ResultFileError`` naming the fault; ``load_runs`` turns each such file into a note and goes on.
A completed run whose test metric or loss is not finite reads as failed (diverged).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lra_snn.results.record import RESULT_FILENAME, SCHEMA_VERSION

LRA_TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
LM_TASK = "wikitext103"
TASKS = LRA_TASKS + (LM_TASK,)
PROFILES = ("full", "mini", "tiny")
STATUSES = ("completed", "failed", "no_data")
_REQUIRED_FIELDS = {
    "schema_version": int, "status": str, "task": str, "model": str, "seed": int,
    "profile": str, "config_hash": str, "git_commit": str,
}


class ResultFileError(ValueError):
    """A result file that cannot be used: not JSON, another schema version, a missing or bad field."""


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


def primary_metric_name(task: str) -> str:
    """The metric a task is ranked by: test perplexity for language modelling, else test accuracy."""
    return "test/ppl" if task == LM_TASK else "test/acc"


def is_number(value: object) -> bool:
    """An int or a float, not a bool."""
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
    if is_number(value) and math.isfinite(value):
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
    if not is_number(value):
        raise ResultFileError(f"completed run lacks a number in metrics['{name}'] (got {value!r})")
    if not math.isfinite(value):
        return None, f"{name} is {value} (diverged)"
    loss = metrics.get("test/loss")
    if is_number(loss) and not math.isfinite(loss):
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
