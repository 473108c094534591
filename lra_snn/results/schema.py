"""The result record of one run (``result.json`` and the files under ``attempts/``): one versioned schema.

Version 2 (written now) holds what a run is and how it ended:

- identity: ``task``, ``model``, ``seed``, ``profile``, ``config_hash`` (the cell), ``code_version``
  (a hash of the package source and configs, ``lra_snn.results.record.code_version``; optional, absent
  from records written before it existed), ``git_commit`` and library ``versions`` at the start of the
  cell, the resolved ``config`` and ``instantiated_digest``
  (sha256 of everything instantiated from the config, ``lra_snn.config.provenance``);
- outcome: ``status`` (``completed``, ``interrupted``, ``failed``, ``no_data``), ``message`` (required
  unless completed), ``finished_at`` (ISO 8601 with time zone), ``metrics`` (name -> number or null;
  a completed run has its ranked metric, ``test/acc`` as a fraction or ``test/ppl``);
- cost: ``segments`` (one per launch that trained: start time, wall time, first and last optimizer
  step; a resumed run has several), ``wall_time_s`` (their sum), ``steps``, ``n_params``, ``device``,
  ``best_checkpoint``.

Version 1 files (no ``interrupted`` status, no digest, no segments, ``finished_at`` optional) read
into the same record: the digest is None, the segments are empty and a missing ``finished_at`` is
the file's modification time. Top-level keys this reader does not know (optional fields a newer
writer adds) are kept unchecked in ``extra`` and written back unchanged. A ``finished_at`` more than
``CLOCK_SKEW_S`` in the future is an error:
such a record would otherwise pass for the newest one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from lra_snn.config.tasks import TASK_TABLE, TASKS

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
RESULT_FILENAME = "result.json"
ATTEMPTS_DIRNAME = "attempts"
PROFILES = ("full", "mini", "tiny")
STATUSES = ("completed", "interrupted", "failed", "no_data")
_V1_STATUSES = ("completed", "failed", "no_data")
CLOCK_SKEW_S = 300.0
# the top-level keys the readers check; any other key is an optional extra, kept as it is
_KNOWN_KEYS = frozenset(
    (
        *("schema_version", "status", "task", "model", "seed", "profile", "config_hash", "code_version"),
        *("git_commit", "finished_at", "message", "metrics", "config", "instantiated_digest", "versions"),
        *("wall_time_s", "steps", "n_params", "device", "best_checkpoint", "segments"),
    )
)

_T = TypeVar("_T")


class ResultFileError(ValueError):
    """A result record that cannot be used; the message says why (readers add the file's path)."""


@dataclass(frozen=True)
class Segment:
    """One launch of a run that trained: when it started, its wall time and the optimizer steps it covered."""

    started_at: str
    wall_time_s: float
    first_step: int
    last_step: int

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "wall_time_s": self.wall_time_s,
            "first_step": self.first_step,
            "last_step": self.last_step,
        }


@dataclass(frozen=True)
class ResultRecord:
    """One run's record; ``schema_version`` is the version of the file it was read from."""

    schema_version: int
    status: str
    task: str
    model: str
    seed: int
    profile: str
    config_hash: str
    git_commit: str
    finished_at: float  # seconds since the epoch
    message: str = ""
    metrics: dict[str, float | None] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    instantiated_digest: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    wall_time_s: float | None = None
    steps: int | None = None
    n_params: int | None = None
    device: str | None = None
    best_checkpoint: str | None = None
    segments: tuple[Segment, ...] = ()
    code_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished_at_iso(self) -> str:
        return datetime.fromtimestamp(self.finished_at, timezone.utc).isoformat()

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON object of a result file."""
        return {
            "schema_version": self.schema_version,
            "status": self.status,
            "task": self.task,
            "model": self.model,
            "seed": self.seed,
            "profile": self.profile,
            "config_hash": self.config_hash,
            "git_commit": self.git_commit,
            "finished_at": self.finished_at_iso,
            "message": self.message,
            "metrics": dict(self.metrics),
            "config": self.config,
            "instantiated_digest": self.instantiated_digest,
            "versions": dict(self.versions),
            "wall_time_s": self.wall_time_s,
            "steps": self.steps,
            "n_params": self.n_params,
            "device": self.device,
            "best_checkpoint": self.best_checkpoint,
            "segments": [segment.to_json() for segment in self.segments],
            "code_version": self.code_version,
            **self.extra,
        }


def is_number(value: object) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def primary_metric_name(task: str) -> str:
    """The metric a task is ranked by (its row of the task table): ``test/acc`` or ``test/ppl``."""
    return TASK_TABLE.rows[task].metric


# --------------------------------------------------------------------------- field checks


def _required(data: Mapping[str, Any], name: str, kind: type[_T]) -> _T:
    if name not in data:
        raise ResultFileError(f"missing required field '{name}'")
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ResultFileError(f"field '{name}' is {value!r}, expected {kind.__name__}")
    return value


def _optional(data: Mapping[str, Any], name: str, kind: type[_T]) -> _T | None:
    if data.get(name) is None:
        return None
    return _required(data, name, kind)


def _choice(data: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = _required(data, name, str)
    if value not in choices:
        raise ResultFileError(f"field '{name}' is {value!r}, expected one of {', '.join(choices)}")
    return value


def _number(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if not is_number(value):
        raise ResultFileError(f"field '{name}' is {value!r}, expected a number")
    return float(value)


def _string_map(data: Mapping[str, Any], name: str) -> dict[str, str]:
    value = _optional(data, name, dict) or {}
    bad = [key for key, item in value.items() if not isinstance(item, str)]
    if bad:
        raise ResultFileError(f"field '{name}' has non-string values for {', '.join(map(str, bad))}")
    return value


def _message(data: Mapping[str, Any], status: str) -> str:
    """The message; required (non-empty) unless the run completed, since it says what happened."""
    if status == "completed":
        return _optional(data, "message", str) or ""
    message = _required(data, "message", str)
    if not message.strip():
        raise ResultFileError(f"field 'message' is empty; a {status} record says what happened")
    return message


def _metrics(data: Mapping[str, Any]) -> dict[str, float | None]:
    raw = _optional(data, "metrics", dict) or {}
    metrics: dict[str, float | None] = {}
    for name, value in raw.items():
        if value is not None and not is_number(value):
            raise ResultFileError(f"metrics['{name}'] is {value!r}, expected a number or null")
        metrics[str(name)] = None if value is None else float(value)
    return metrics


def _check_completed_metric(metrics: Mapping[str, float | None], task: str) -> None:
    """A completed run carries its ranked metric; an accuracy is a fraction (NaN: a diverged run, read as such)."""
    name = primary_metric_name(task)
    value = metrics.get(name)
    if value is None:
        raise ResultFileError(f"completed run lacks a number in metrics['{name}'] (got {value!r})")
    if name == "test/acc" and math.isfinite(value) and not 0.0 <= value <= 1.0:
        raise ResultFileError(
            f"metrics['test/acc'] = {value} is not a fraction in [0, 1] (percent written by mistake?)"
        )


def parse_time(stamp: str, name: str = "finished_at") -> float:
    """Seconds since the epoch of an ISO 8601 time with a time zone."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError as err:
        raise ResultFileError(f"field '{name}' is {stamp!r}, not an ISO 8601 time") from err
    if moment.tzinfo is None:
        raise ResultFileError(f"field '{name}' is {stamp!r}, which has no time zone (write e.g. +00:00)")
    return moment.timestamp()


def _check_not_future(finished: float, now: float) -> None:
    ahead = finished - now
    if ahead > CLOCK_SKEW_S:
        stamp = datetime.fromtimestamp(finished, timezone.utc).isoformat()
        raise ResultFileError(
            f"finished_at {stamp} is {ahead / 60:.0f} min in the future (allowed clock skew: {CLOCK_SKEW_S / 60:.0f} "
            "min); the writing machine's clock was wrong or the file was edited: correct the time or rerun the cell"
        )


def _segments(data: Mapping[str, Any]) -> tuple[Segment, ...]:
    raw = _optional(data, "segments", list) or []
    segments = []
    for index, item in enumerate(raw):
        where = f"segments[{index}]"
        if not isinstance(item, dict):
            raise ResultFileError(f"{where} is {item!r}, expected an object")
        try:
            started = _required(item, "started_at", str)
            parse_time(started, f"{where}.started_at")
            wall = _number(item, "wall_time_s")
            first, last = _required(item, "first_step", int), _required(item, "last_step", int)
        except ResultFileError as err:
            raise ResultFileError(f"{where}: {err}") from err
        if wall is None or wall < 0:
            raise ResultFileError(f"{where}: wall_time_s is {wall!r}, expected a number >= 0")
        segments.append(Segment(started, wall, first, last))
    return tuple(segments)


# --------------------------------------------------------------------------- readers per version


def _common(
    data: Mapping[str, Any], version: int, statuses: tuple[str, ...], finished: float, now: float
) -> dict[str, Any]:
    """The fields versions 1 and 2 share, checked."""
    status = _choice(data, "status", statuses)
    task = _choice(data, "task", TASKS)
    metrics = _metrics(data)
    if status == "completed":
        _check_completed_metric(metrics, task)
    _check_not_future(finished, now)
    return {
        "schema_version": version,
        "status": status,
        "task": task,
        "model": _required(data, "model", str),
        "seed": _required(data, "seed", int),
        "profile": _choice(data, "profile", PROFILES),
        "config_hash": _required(data, "config_hash", str),
        "git_commit": _required(data, "git_commit", str),
        "finished_at": finished,
        "message": _message(data, status),
        "metrics": metrics,
        "config": _optional(data, "config", dict) or {},
        "versions": _string_map(data, "versions"),
        "wall_time_s": _number(data, "wall_time_s"),
        "steps": _optional(data, "steps", int),
        "n_params": _optional(data, "n_params", int),
        "device": _optional(data, "device", str),
        "best_checkpoint": _optional(data, "best_checkpoint", str),
        "code_version": _optional(data, "code_version", str),
        "extra": {key: value for key, value in data.items() if key not in _KNOWN_KEYS},
    }


def _read_v1(data: Mapping[str, Any], file_time: float | None, now: float) -> ResultRecord:
    """A version-1 record: statuses completed/failed/no_data, ``finished_at`` else the file's time."""
    stamp = data.get("finished_at")
    if isinstance(stamp, str):
        finished = parse_time(stamp)
    elif file_time is not None:
        finished = file_time
    else:
        raise ResultFileError("missing required field 'finished_at'")
    return ResultRecord(**_common(data, 1, _V1_STATUSES, finished, now))


def _read_v2(data: Mapping[str, Any], now: float) -> ResultRecord:
    finished = parse_time(_required(data, "finished_at", str))
    _required(data, "config", dict)
    return ResultRecord(
        **_common(data, 2, STATUSES, finished, now),
        instantiated_digest=_optional(data, "instantiated_digest", str),
        segments=_segments(data),
    )


_READERS: dict[int, Callable[[Mapping[str, Any], float | None, float], ResultRecord]] = {
    1: _read_v1,
    2: lambda data, _file_time, now: _read_v2(data, now),
}


def parse_record(data: object, file_time: float | None = None, now: float | None = None) -> ResultRecord:
    """Check a decoded result object of any readable version and return it as the current record.

    ``file_time`` stands in for a version-1 file's missing ``finished_at``; ``now`` is the clock
    the future check uses (default: this machine's). Raises ResultFileError saying what is wrong.
    """
    if not isinstance(data, dict):
        raise ResultFileError(f"top level is a JSON {type(data).__name__}, expected an object")
    version = _required(data, "schema_version", int)
    if version not in _READERS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise ResultFileError(
            f"schema_version {version} is not supported; this code reads versions {readable} "
            f"(rerun the run, or convert the file to version {SCHEMA_VERSION})"
        )
    return _READERS[version](data, file_time, time.time() if now is None else now)


def read_record(path: Path) -> ResultRecord:
    """The checked record in the file at ``path``; ResultFileError (the reason, without the path) when unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        file_time = path.stat().st_mtime
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultFileError(f"not valid JSON ({err})") from err
    return parse_record(data, file_time)


def new_record(fields: Mapping[str, Any], finished_at: float | None = None) -> ResultRecord:
    """A current-version record from a writer's fields, stamped finished now (or at ``finished_at``), checked."""
    finished = time.time() if finished_at is None else finished_at
    data = {
        **fields,
        "schema_version": SCHEMA_VERSION,
        "finished_at": datetime.fromtimestamp(finished, timezone.utc).isoformat(),
    }
    return parse_record(json.loads(json.dumps(data, default=str)), now=finished)
