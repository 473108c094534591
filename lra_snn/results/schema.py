"""The result record of one run (``result.json`` and the files under ``attempts/``): one versioned schema.

Version 2 (written now) holds what a run is and how it ended:

- identity: ``task``, ``model``, ``seed``, ``profile``, ``config_hash`` (the cell), ``code_version``
  (a hash of the package source and configs, ``lra_snn.results.record.code_version``; optional, absent
  from records written before it existed), ``git_commit`` and library ``versions`` at the start of the
  cell, the resolved ``config`` and ``instantiated_digest``
  (sha256 of everything instantiated from the config, ``lra_snn.config.provenance``), and ``data``
  (``DataIdentity``: a digest of the content of the data files read and the identities of those files;
  absent from records written before it existed);
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

Every record written now carries ``record_digest``: the SHA-256 of the rest of the file's content (its keys
sorted, ``content_digest``). A file whose digest does not match its content was edited after its run wrote
it and is refused; a file without one (written before it existed) is read as it is.

Each version is a strict pydantic model of the file (a bool is never a number, a float never an int, a
number never a string); a null optional field reads as absent. ``python -m lra_snn.results.schema`` prints
the JSON Schema of version 2, which ``docs/results.md`` embeds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
    with_config,
)
from pydantic_core import CoreSchema, ErrorDetails, PydanticCustomError, core_schema

from lra_snn.config.tasks import TASK_TABLE, TASKS

SCHEMA_VERSION = 2
DIGEST_KEY = "record_digest"  # sha256 of the rest of the record (content_digest)
READABLE_VERSIONS = (1, 2)
RESULT_FILENAME = "result.json"
ATTEMPTS_DIRNAME = "attempts"
PROFILES = ("full", "mini", "tiny")
STATUSES = ("completed", "interrupted", "failed", "no_data")
_V1_STATUSES = ("completed", "failed", "no_data")
CLOCK_SKEW_S = 300.0
_Model = TypeVar("_Model", bound=BaseModel)


class ResultFileError(ValueError):
    """A result record that cannot be used; the message says why (readers add the file's path)."""


def _moment(stamp: str) -> datetime:
    """The time ``stamp`` names; PydanticCustomError (what is wrong) unless it is ISO 8601 with a time zone."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        raise PydanticCustomError("iso_time", "not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise PydanticCustomError("time_zone", "which has no time zone (write e.g. +00:00)")
    return moment


def _checked_time(stamp: str) -> str:
    _moment(stamp)
    return stamp


_Time = Annotated[StrictStr, AfterValidator(_checked_time)]


@dataclass(frozen=True)
class _OneOf:
    """``Annotated`` metadata of a field: one of ``choices`` (an ``enum`` or ``const`` in the JSON Schema)."""

    choices: tuple[object, ...]

    def __get_pydantic_core_schema__(self, _source: type[Any], _handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.literal_schema(list(self.choices))


# a dict validates into a Segment outside strict mode only; its fields are each strict
@with_config(ConfigDict(strict=False))
@dataclass(frozen=True)
class Segment:
    """One launch of a run that trained: when it started, its wall time and the optimizer steps it covered."""

    started_at: _Time
    wall_time_s: Annotated[StrictFloat, Field(ge=0)]
    first_step: StrictInt
    last_step: StrictInt

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
    data: DataIdentity | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished_at_iso(self) -> str:
        return datetime.fromtimestamp(self.finished_at, timezone.utc).isoformat()

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON object of a result file, ``record_digest`` included."""
        content = self.content()
        return {**content, DIGEST_KEY: content_digest(content)}

    def content(self) -> dict[str, Any]:
        """The record's fields as JSON, without its digest."""
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
            **({} if self.data is None else {"data": self.data.to_json()}),
            **self.extra,
        }


def is_number(value: object) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def primary_metric_name(task: str) -> str:
    """The metric a task is ranked by (its row of the task table): ``test/acc`` or ``test/ppl``."""
    return TASK_TABLE.rows[task].metric


class DataIdentity(BaseModel):
    """The data files a run read (``lra_snn.data.base.DataModuleBase.data_identity``): ``digest``, the SHA-256
    of each file's name with its content digest (the same on every machine; generated data reads none);
    ``sources``, each file or folder read and the identities of its files (``lra_snn.data.store.stat_signature``),
    which a sweep compares without reading the files."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    digest: str
    sources: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "sources": dict(self.sources)}


# --------------------------------------------------------------------------- the files, one model per version


def _check_completed_metric(metrics: Mapping[str, float | None], task: str) -> None:
    """A completed run carries its ranked metric; an accuracy is a fraction (NaN: a diverged run, read as such)."""
    name = primary_metric_name(task)
    value = metrics.get(name)
    if value is None:
        raise PydanticCustomError("metric", f"completed run lacks a number in metrics['{name}'] (got {value!r})")
    if name == "test/acc" and math.isfinite(value) and not 0.0 <= value <= 1.0:
        raise PydanticCustomError(
            "fraction", f"metrics['test/acc'] = {value} is not a fraction in [0, 1] (percent written by mistake?)"
        )


class _Versioned(BaseModel):
    """What every version has: its number. Unknown keys are ignored here (``extra`` keeps them)."""

    model_config = ConfigDict(strict=True)

    schema_version: int


class _FileV1(_Versioned):
    """A version-1 result file; a null optional field reads as absent."""

    schema_version: Annotated[int, _OneOf((1,))]
    status: Annotated[str, _OneOf(_V1_STATUSES)]
    task: Annotated[str, _OneOf(TASKS)]
    model: str
    seed: int
    profile: Annotated[str, _OneOf(PROFILES)]
    config_hash: str
    git_commit: str
    finished_at: _Time | None = None  # absent: the file's modification time stands in
    message: str | None = None
    metrics: dict[str, float | None] | None = None
    config: dict[str, Any] | None = None
    versions: dict[str, str] | None = None
    wall_time_s: float | None = None
    steps: int | None = None
    n_params: int | None = None
    device: str | None = None
    best_checkpoint: str | None = None
    code_version: str | None = None

    @model_validator(mode="after")
    def _outcome_is_told(self) -> _FileV1:
        """A record that did not complete says what happened; a completed one carries its ranked metric."""
        if self.status != "completed" and not (self.message or "").strip():
            raise PydanticCustomError("message", f"field 'message' is empty; a {self.status} record says what happened")
        if self.status == "completed":
            _check_completed_metric(self.metrics or {}, self.task)
        return self


class _FileV2(_FileV1):
    """A result file of schema version 2 (``lra_snn.results.schema``); other top-level keys are optional extras.

    Beyond what this schema states: ``finished_at`` and ``started_at`` are ISO 8601 times with a time zone,
    ``finished_at`` not more than ``CLOCK_SKEW_S`` seconds in the future; ``message`` is non-empty unless
    ``status`` is ``completed``; a completed record has a number (NaN: a diverged run) in its task's ranked
    metric, ``test/acc`` (a fraction in [0, 1]) or ``test/ppl``; ``record_digest`` is the SHA-256 of the
    rest of the file's JSON (keys sorted, separators ``,`` and ``:``).
    """

    model_config = ConfigDict(title="result.json (schema version 2)")

    schema_version: Annotated[int, _OneOf((SCHEMA_VERSION,))]
    status: Annotated[str, _OneOf(STATUSES)]
    finished_at: _Time
    config: dict[str, Any]
    instantiated_digest: str | None = None
    segments: tuple[Segment, ...] | None = Field(default=None, strict=False)  # strict takes no list for a tuple
    data: DataIdentity | None = None
    record_digest: str | None = None  # checked against the content before the fields (_check_digest)


_FILES: dict[int, type[_FileV1]] = {1: _FileV1, 2: _FileV2}
# the top-level keys the current version knows; any other key is an optional extra, kept as it is
_KNOWN_KEYS = frozenset(_FileV2.model_fields)


def json_schema() -> str:
    """The JSON Schema of a current-version result file, as ``python -m lra_snn.results.schema`` prints it."""
    return json.dumps(_FileV2.model_json_schema(), indent=2)


# --------------------------------------------------------------------------- pydantic's errors as messages

# pydantic's error types for a value of the wrong type, and what the message says was expected instead
_EXPECTED_TYPE = {
    "int_type": "expected int",
    "string_type": "expected str",
    "float_type": "expected a number",
    "dict_type": "expected dict",
    "tuple_type": "expected list",
    "dataclass_type": "expected an object",
}


def _path(loc: tuple[int | str, ...]) -> str:
    """``metrics['test/acc']``, ``segments[0].started_at``: a map's key in brackets, a list item's field after a dot."""
    text = str(loc[0])
    for before, part in itertools.pairwise(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(before, int):
            text += f".{part}"
        else:
            text += f"[{part!r}]"
    return text


def _problem(error: ErrorDetails) -> str:
    """One line naming the field, its value and what was expected (a check of the whole record: its message)."""
    loc = error["loc"]
    if not loc:
        return error["msg"]
    if error["type"] == "missing":
        return f"missing required field '{_path(loc)}'"
    where = f"field '{loc[0]}'" if len(loc) == 1 else _path(loc)
    expected = _EXPECTED_TYPE.get(error["type"]) or error["msg"].replace("Input should be", "expected")
    return f"{where} is {error['input']!r}, {expected}"


def _validated(model: type[_Model], data: Mapping[str, Any]) -> _Model:
    """``data`` checked by ``model``; ResultFileError listing every problem (on one line: it becomes a board note)."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ResultFileError("; ".join(_problem(error) for error in err.errors(include_url=False))) from None


# --------------------------------------------------------------------------- reading and writing


def parse_time(stamp: str, name: str = "finished_at") -> float:
    """Seconds since the epoch of an ISO 8601 time with a time zone."""
    try:
        return _moment(stamp).timestamp()
    except PydanticCustomError as err:
        raise ResultFileError(f"field '{name}' is {stamp!r}, {err.message()}") from None


def _finished_at(file: _FileV1, file_time: float | None) -> float:
    """The file's ``finished_at``, else (version 1 only) the file's modification time."""
    if file.finished_at is not None:
        return parse_time(file.finished_at)
    if file_time is None:
        raise ResultFileError("missing required field 'finished_at'")
    return file_time


def _check_not_future(finished: float, now: float) -> None:
    ahead = finished - now
    if ahead > CLOCK_SKEW_S:
        stamp = datetime.fromtimestamp(finished, timezone.utc).isoformat()
        raise ResultFileError(
            f"finished_at {stamp} is {ahead / 60:.0f} min in the future (allowed clock skew: {CLOCK_SKEW_S / 60:.0f} "
            "min); the writing machine's clock was wrong or the file was edited: correct the time, or move the "
            "file out of the results folder and rerun the cell"
        )


def _record(file: _FileV1, finished_at: float, data: Mapping[str, Any]) -> ResultRecord:
    """The record of a checked file: a null or absent field takes the record's default, unknown keys go to extra."""
    given = {name: value for name, value in file if value is not None}
    extra = {key: value for key, value in data.items() if key not in _KNOWN_KEYS}
    return ResultRecord(**{**given, "finished_at": finished_at, "extra": extra})


def content_digest(data: Mapping[str, Any]) -> str:
    """SHA-256 of a record's JSON content without its ``record_digest`` (keys sorted, compact separators)."""
    content = {key: value for key, value in data.items() if key != DIGEST_KEY}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_digest(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without its ``record_digest``, after checking that the digest matches the content."""
    if DIGEST_KEY not in data:
        return data
    if data[DIGEST_KEY] != content_digest(data):
        raise ResultFileError(
            f"its {DIGEST_KEY} does not match its content: the file was edited after its run wrote it; restore "
            "the file as written, or move it out of the results folder and rerun the cell"
        )
    return {key: value for key, value in data.items() if key != DIGEST_KEY}


def parse_record(data: object, file_time: float | None = None, now: float | None = None) -> ResultRecord:
    """Check a decoded result object of any readable version and return it as the current record.

    ``file_time`` stands in for a version-1 file's missing ``finished_at``; ``now`` is the clock
    the future check uses (default: this machine's). Raises ResultFileError saying what is wrong.
    """
    if not isinstance(data, dict):
        raise ResultFileError(f"top level is a JSON {type(data).__name__}, expected an object")
    data = _check_digest(data)
    version = _validated(_Versioned, data).schema_version
    if version not in _FILES:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise ResultFileError(
            f"schema_version {version} is not supported; this code reads versions {readable} "
            f"(rerun the run, or convert the file to version {SCHEMA_VERSION})"
        )
    file = _validated(_FILES[version], data)
    finished = _finished_at(file, file_time)
    _check_not_future(finished, time.time() if now is None else now)
    return _record(file, finished, data)


def read_record(path: Path, require_digest: bool = False) -> ResultRecord:
    """The checked record in the file at ``path``; ResultFileError (the reason, without the path) when unusable,
    or, with ``require_digest``, when it has no ``record_digest`` to show it is as its run wrote it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        file_time = path.stat().st_mtime
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultFileError(f"not valid JSON ({err})") from err
    if require_digest and isinstance(data, dict) and DIGEST_KEY not in data:
        raise ResultFileError(
            f"it has no {DIGEST_KEY}, so nothing shows that it is as its run wrote it (every record written "
            f"since digests exist has one; the shipped runs are checked by their manifest instead): move the "
            "file out of the results folder and rerun the cell"
        )
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


if __name__ == "__main__":
    print(json_schema())
