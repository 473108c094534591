"""Result files read back as checked ``Run`` records, ready to be grouped and ranked.

Every ``result.json`` under a results folder is read, and every record under its ``attempts/``
(``Run.attempt``). A file the schema (``lra_snn.results.schema``) rejects, or one lying in the folder of
another run than the one it records (``check_location``), raises ``ResultFileError`` naming the fault;
``load_runs`` turns each such file into a note and goes on. A completed run
whose test metric or loss is not finite reads as failed (diverged). A run's code version is its
record's ``code_version`` (a hash of the package source and configs); a record written before that
field existed stands for its git commit instead (``git <12 hex digits>``). Such a record's ``+dirty``
mark does not split it from the clean commit: it cannot tell an edited source file from a result
file written into the tree (the provenance table still shows the mark).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lra_snn.config import locations
from lra_snn.config.tasks import TASKS
from lra_snn.results.schema import (
    ATTEMPTS_DIRNAME,
    PROFILES,
    RESULT_FILENAME,
    STATUSES,
    ResultFileError,
    ResultRecord,
    is_number,
    primary_metric_name,
    read_record,
)

__all__ = [
    "PROFILES",
    "STATUSES",
    "ResultFileError",
    "Run",
    "is_number",
    "load_runs",
    "primary_metric_name",
    "read_result_file",
    "short_commit",
]


@dataclass(frozen=True)
class Run:
    """One result file. Percentages (accuracy, majority and firing rates) are already x100."""

    path: Path
    finished_at: float
    status: str
    message: str
    task: str
    model: str
    seed: int
    profile: str
    config_hash: str
    git_commit: str
    code_version: str
    data_digest: str  # of the data files the run read (``ResultRecord.data``); "" in records from before it
    metric: float | None  # test accuracy in % (LRA) or test perplexity (LM); None unless completed
    majority_rate: float | None
    firing_rate: float | None
    energy_mj: float | None
    n_params: int | None
    wall_time_s: float | None
    surrogate_agreement: float | None = None  # % of spikes equal to the exact neuron's (surrogate neurons only)
    exact_neuron_metric: float | None = None  # the ranked metric again with the exact neurons swapped in
    attempt: bool = False  # a record under attempts/: shown when it matters, never counted
    config: dict[str, Any] = field(default_factory=dict)  # the resolved config the run recorded

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.profile, self.model, self.task)

    @property
    def age(self) -> tuple[float, str]:
        """Sort key: the time the run finished, the path breaking ties so the order is deterministic."""
        return (self.finished_at, str(self.path))


def short_commit(commit: str) -> str:
    """The first 12 hex digits of a commit, keeping a "+dirty" mark (uncommitted changes at run time)."""
    sha, dirty, _ = commit.partition("+dirty")
    return sha[:12] + ("+dirty" if dirty else "")


def version_of(record: ResultRecord) -> str:
    """The record's code version, or ``git <commit>`` (no dirty mark) for a record written before code versions."""
    return record.code_version or f"git {record.git_commit.partition('+dirty')[0][:12]}"


def _finite(mapping: dict[str, float | None], name: str, scale: float = 1.0) -> float | None:
    """``mapping[name] * scale`` when it is a finite number, else None (absent, null or NaN)."""
    value = mapping.get(name)
    return value * scale if value is not None and math.isfinite(value) else None


def _exact_neuron_metric(record: ResultRecord) -> float | None:
    """The ranked metric of the test pass with exact neurons (``test/exact_neuron/<name>``), in the board's unit."""
    name = primary_metric_name(record.task)
    return _finite(record.metrics, name.replace("test/", "test/exact_neuron/"), 100.0 if name == "test/acc" else 1.0)


def _ranked_metric(record: ResultRecord) -> tuple[float | None, str]:
    """The run's ranked metric (accuracy in %), or (None, why) when the run diverged."""
    name = primary_metric_name(record.task)
    value = record.metrics[name]
    assert value is not None  # the schema checks that a completed record has it
    if not math.isfinite(value):
        return None, f"{name} is {value} (diverged)"
    loss = record.metrics.get("test/loss")
    if loss is not None and not math.isfinite(loss):
        return None, f"test/loss is {loss} (diverged)"
    return (value * 100.0 if name == "test/acc" else value), ""


def run_of(record: ResultRecord, path: Path, attempt: bool = False) -> Run:
    """The leaderboard's view of ``record`` (read from ``path``)."""
    status, message, metric = record.status, record.message, None
    if status == "completed":
        metric, why = _ranked_metric(record)
        if metric is None:
            status, message = "failed", why
    return Run(
        path=path,
        finished_at=record.finished_at,
        status=status,
        message=message,
        task=record.task,
        model=record.model,
        seed=record.seed,
        profile=record.profile,
        config_hash=record.config_hash,
        git_commit=record.git_commit,
        code_version=version_of(record),
        data_digest="" if record.data is None else record.data.digest,
        metric=metric,
        majority_rate=_finite(record.metrics, "test/majority_rate", 100.0),
        firing_rate=_finite(record.metrics, "test/firing_rate", 100.0),
        energy_mj=_finite(record.metrics, "test/energy_mj"),
        n_params=record.n_params,
        wall_time_s=record.wall_time_s
        if record.wall_time_s is not None and math.isfinite(record.wall_time_s)
        else None,
        surrogate_agreement=_finite(record.metrics, "test/surrogate_agreement", 100.0),
        exact_neuron_metric=_exact_neuron_metric(record) if metric is not None else None,
        attempt=attempt,
        config=record.config,
    )


def check_location(record: ResultRecord, path: Path, attempt: bool = False) -> None:
    """ResultFileError when ``path`` lies in a run's folder (``<profile>/<task>/<model>/<config hash>/seed_<n>/``,
    its record there or under ``attempts/``) whose names disagree with what the record says: a file copied
    or edited into another cell's or seed's place is never counted there."""
    seed_folder = path.parent.parent if attempt else path.parent
    cell = seed_folder.parent
    in_layout = (
        re.fullmatch(r"seed_-?\d+", seed_folder.name)
        and len(seed_folder.parents) >= 4
        and cell.parent.parent.parent.name in PROFILES
        and cell.parent.parent.name in TASKS
    )
    if not in_layout:
        return
    found = {
        "seed": seed_folder.name.removeprefix("seed_"),
        "config hash": cell.name,
        "model": cell.parent.name,
        "task": cell.parent.parent.name,
        "profile": cell.parent.parent.parent.name,
    }
    said = {
        "seed": str(record.seed),
        "config hash": record.config_hash,
        "model": record.model,
        "task": record.task,
        "profile": record.profile,
    }
    wrong = [f"{key} {said[key]!r} (its folder says {found[key]!r})" for key in found if found[key] != said[key]]
    if wrong:
        raise ResultFileError(
            f"the record says {', '.join(wrong)}: copied or edited into another run's place; move it to the "
            f"folder of the run it records ({said['profile']}/{said['task']}/{said['model']}/"
            f"{said['config hash']}/seed_{said['seed']}) or delete it"
        )


CONFIG_SAYS = {  # a record's field -> where its stored config says the same
    "model": ("model", "name"),
    "task": ("task_name",),
    "profile": ("profile_name",),
    "seed": ("seed",),
}


def check_config_agrees(record: ResultRecord) -> None:
    """ResultFileError when the record's model, task, profile or seed differs from what its stored config
    says (a field edited without the config it came from)."""
    wrong = []
    for name, keys in CONFIG_SAYS.items():
        node: Any = record.config
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None and str(node) != str(getattr(record, name)):
            wrong.append(f"{name} {getattr(record, name)!r} (its config says {node!r})")
    if wrong:
        raise ResultFileError(
            f"the record says {', '.join(wrong)}: a field was edited after its run wrote it; move the file out of "
            "the results folder and rerun the cell"
        )


def read_result_file(path: Path, attempt: bool = False, require_digest: bool = False) -> Run:
    """Parse and check one result file (any readable schema version) and its place; ResultFileError naming the
    fault (with ``require_digest``, also a file without its ``record_digest``)."""
    record = read_record(path, require_digest)
    check_config_agrees(record)
    check_location(record, path, attempt)
    return run_of(record, path, attempt)


def load_runs(results_dir: Path) -> tuple[list[Run], list[str]]:
    """Every usable result and attempt file under ``results_dir`` and one note per file that was skipped. Outside
    the shipped runs (whose files the board checks against their manifest, ``lra_snn.results.manifest``) a file
    without its ``record_digest`` is skipped too: with the digest deleted, an edited metric or model would count."""
    runs, problems = [], []
    require_digest = not locations.inside_shipped_runs(results_dir)
    results = sorted(results_dir.rglob(RESULT_FILENAME))
    attempts = sorted(results_dir.rglob(f"{ATTEMPTS_DIRNAME}/*.json"))
    for path, attempt in [*((p, False) for p in results), *((p, True) for p in attempts)]:
        try:
            runs.append(read_result_file(path, attempt, require_digest))
        except ResultFileError as err:
            problems.append(f"skipped `{path}`: {err}")
    return runs, problems
