"""Every recorded run as an offline Weights & Biases run, so that ``wandb sync`` puts the whole board on a dashboard.

Each ``result.json`` (and each record under its ``attempts/``) in the results folders becomes one offline
run under ``<out>/wandb/offline-run-*-<id>/``, laid out as live training lays out its own
(``conf/logger/wandb.yaml``):

- project ``lra-snn``, group ``<profile>-<task>-<model>-<cell hash>`` (the seeds of one cell side by side),
  job type ``<task>``, name ``<model>-<task>-seed<seed>``;
- tags ``model:<name>``, ``neuron:<neuron or none>``, ``task:<task>``, ``profile:<profile>``,
  ``status:<status>``, ``source:shipped`` (under ``results/reference-runs``) or ``source:local``, and
  ``attempt`` for a record under ``attempts/``;
- config: the resolved config the record holds; summary: its metrics and its identity (status, message,
  code version, git commit, seed, cell hash, finish time, wall time, steps, parameters, device, source,
  result file);
- history: the rows of the ``metrics.csv`` the record names (``lra_snn.results.curves``), one step per
  row, ``<stage>/<column>`` (``train/loss``, ``val/acc``, ``final_val/acc``, ``test/acc``...) with its
  ``epoch``, against ``trainer/global_step`` (the row's optimizer step), as Lightning logs live runs.

Failed, interrupted and no-data runs are exported as well (their status is a tag and a summary field). A
file the schema rejects is named and skipped. The run id is a hash of the run's identity and of the bytes
of its record and curves, so exporting again writes nothing for a run already exported (its folder
exists) and a record that changed gets a new run; a run an export leaves unfinished (an error, Ctrl-C)
is removed, so the next export writes it whole. wandb is an optional extra (``pip install
'lra-snn[wandb]'``); nothing is sent anywhere: ``make wandb-sync`` uploads the folders.

    python -m lra_snn.cli.export_wandb [--results DIR ...] [--out DIR] [--project NAME]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from lra_snn.config import PROJECT_ROOT
from lra_snn.config.locations import SHIPPED_RUNS_DIR, inside_shipped_runs, shipped_runs_refusal
from lra_snn.results.curves import MetricsFileError, Row, metrics_path, read_metrics_file
from lra_snn.results.runs import version_of
from lra_snn.results.schema import ATTEMPTS_DIRNAME, RESULT_FILENAME, ResultFileError, ResultRecord, read_record

DEFAULT_RESULTS = (SHIPPED_RUNS_DIR, PROJECT_ROOT / "results" / "local" / "runs")
DEFAULT_OUT = PROJECT_ROOT / "outputs" / "wandb-export"
DEFAULT_PROJECT = "lra-snn"
MISSING_WANDB = "lra-export-wandb needs wandb: pip install 'lra-snn[wandb]'"
STEP_KEY = "trainer/global_step"  # the x-axis of a live run's history (Lightning's WandbLogger)
ID_LENGTH = 16  # hex digits of the run id


@dataclass(frozen=True)
class OfflineRun:
    """What one exported run holds: its identity on the dashboard, config, summary and history."""

    run_id: str
    name: str
    group: str
    job_type: str
    tags: tuple[str, ...]
    config: dict[str, Any]
    summary: dict[str, Any]
    history: tuple[dict[str, float | int], ...]


# --------------------------------------------------------------------------- what a record becomes


def record_files(folder: Path) -> Iterator[tuple[Path, bool]]:
    """Every ``result.json`` under ``folder`` and every record under an ``attempts/`` (flagged True), sorted."""
    yield from ((path, False) for path in sorted(folder.rglob(RESULT_FILENAME)))
    yield from ((path, True) for path in sorted(folder.rglob(f"{ATTEMPTS_DIRNAME}/*.json")))


def source_of(path: Path) -> str:
    """``shipped`` for a record under the project's ``results/reference-runs``, else ``local``."""
    return "shipped" if inside_shipped_runs(path) else "local"


def neuron_of(config: dict[str, Any]) -> str:
    """``model.encoder.layer.neuron.name`` of a recorded config, ``none`` where it has none (S4D, old records)."""
    node: Any = config
    for key in ("model", "encoder", "layer", "neuron", "name"):
        if not isinstance(node, dict) or key not in node:
            return "none"
        node = node[key]
    return str(node)


def run_id(record: ResultRecord, source: str, project: str, digest: str) -> str:
    """The run's id: sha256 of its project, source, cell, seed, code version and content ``digest``, truncated."""
    identity = (
        project,
        source,
        record.profile,
        record.task,
        record.model,
        record.config_hash,
        str(record.seed),
        version_of(record),
        digest,
    )
    return hashlib.sha256("\0".join(identity).encode()).hexdigest()[:ID_LENGTH]


def history_of(rows: list[Row]) -> tuple[dict[str, float | int], ...]:
    """One history step per curve row: ``<stage>/<column>`` values, its ``epoch`` and its optimizer step."""
    return tuple(
        {**{f"{row.stage}/{name}": value for name, value in row.values.items()}, "epoch": row.epoch, STEP_KEY: row.step}
        for row in rows
    )


def shown_path(path: Path) -> str:
    """``path`` relative to the project root where it lies inside it, else absolute."""
    resolved = path.resolve()
    return str(resolved.relative_to(PROJECT_ROOT)) if resolved.is_relative_to(PROJECT_ROOT) else str(resolved)


def offline_run(
    record: ResultRecord, path: Path, attempt: bool, rows: list[Row], digest: str, project: str
) -> OfflineRun:
    """The offline run of ``record`` (read from ``path``, curves ``rows``, file bytes hashed into ``digest``)."""
    source = source_of(path)
    code_version = version_of(record)
    tags = [
        f"model:{record.model}",
        f"neuron:{neuron_of(record.config)}",
        f"task:{record.task}",
        f"profile:{record.profile}",
        f"status:{record.status}",
        f"source:{source}",
    ]
    identity = {
        "status": record.status,
        "message": record.message,
        "code_version": code_version,
        "git_commit": record.git_commit,
        "seed": record.seed,
        "config_hash": record.config_hash,
        "finished_at": record.finished_at_iso,
        "wall_time_s": record.wall_time_s,
        "steps": record.steps,
        "n_params": record.n_params,
        "device": record.device,
        "source": source,
        "result_file": shown_path(path),
        "attempt": attempt,
    }
    return OfflineRun(
        run_id=run_id(record, source, project, digest),
        name=f"{record.model}-{record.task}-seed{record.seed}",
        group=f"{record.profile}-{record.task}-{record.model}-{record.config_hash}",
        job_type=record.task,
        tags=(*tags, "attempt") if attempt else tuple(tags),
        config=record.config,
        summary={**record.metrics, **identity},
        history=history_of(rows),
    )


def read_run(path: Path, attempt: bool, project: str) -> tuple[OfflineRun, str]:
    """The offline run of the record at ``path`` and a note ('' or why its curves are left out).

    ResultFileError (the reason, without the path) when the schema rejects the file."""
    record = read_record(path)
    content = hashlib.sha256(path.read_bytes())
    rows: list[Row] = []
    note = ""
    if "metrics_file" in record.extra:  # a run that kept no curves (no data, or written before) has none
        try:
            curves = metrics_path(path, record.extra["metrics_file"])
            rows = read_metrics_file(curves)
            content.update(curves.read_bytes())
        except MetricsFileError as err:
            note = f"curves left out: {err}"
    return offline_run(record, path, attempt, rows, content.hexdigest(), project), note


# --------------------------------------------------------------------------- writing offline runs


def exported_ids(out: Path) -> set[str]:
    """The ids of the offline runs already under ``out/wandb`` (folders ``offline-run-<time>-<id>``)."""
    return {folder.name.rpartition("-")[2] for folder in (out / "wandb").glob("offline-run-*") if folder.is_dir()}


def write_run(wandb: ModuleType, run: OfflineRun, out: Path, project: str) -> None:
    """Write ``run`` as an offline wandb run under ``out/wandb``; a run left unfinished by an error is removed."""
    settings = wandb.Settings(
        silent=True,
        console="off",
        save_code=False,
        disable_git=True,
        disable_job_creation=True,
        x_disable_stats=True,
        x_disable_meta=True,
        x_disable_machine_info=True,
    )
    out.mkdir(parents=True, exist_ok=True)
    live = wandb.init(
        mode="offline",
        dir=out,
        id=run.run_id,
        project=project,
        group=run.group,
        job_type=run.job_type,
        name=run.name,
        tags=list(run.tags),
        config=run.config,
        reinit="create_new",
        settings=settings,
    )
    try:
        live.define_metric(STEP_KEY)
        live.define_metric("*", step_metric=STEP_KEY, step_sync=True)
        for step in run.history:
            live.log(step)
        live.summary.update(run.summary)
        live.finish()
    except BaseException:
        live.finish(exit_code=1)
        shutil.rmtree(live.settings.sync_dir, ignore_errors=True)
        raise


def import_wandb() -> ModuleType | None:
    """The wandb module, or None when it is not installed."""
    try:
        import wandb
    except ImportError:
        return None
    return wandb


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command's arguments: results folders, output folder and project."""
    parser = argparse.ArgumentParser(
        prog="lra-export-wandb",
        description="Write every recorded run (shipped and local) as an offline wandb run (upload: make wandb-sync).",
    )
    parser.add_argument(
        "--results",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="folders searched recursively for result.json (default: results/reference-runs and results/local/runs, "
        "either left out where it does not exist)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder of the offline runs (default: outputs/wandb-export)"
    )
    parser.add_argument("--project", default=DEFAULT_PROJECT, help=f"wandb project (default: {DEFAULT_PROJECT})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Export the runs; print one line per skipped file and ``N exported, M already exported`` at the end."""
    args = parse_args(argv)
    wandb = import_wandb()
    if wandb is None:
        print(MISSING_WANDB, file=sys.stderr)
        return 2
    if inside_shipped_runs(args.out):
        print(f"lra-export-wandb: {shipped_runs_refusal('--out', args.out)}, e.g. {DEFAULT_OUT}", file=sys.stderr)
        return 2
    out = args.out.resolve()
    done = exported_ids(out)
    exported, already, skipped = 0, 0, 0
    for folder in args.results or [folder for folder in DEFAULT_RESULTS if folder.is_dir()]:
        if not folder.is_dir():
            print(f"--results {folder}: no such folder, nothing read there", file=sys.stderr)
            continue
        for path, attempt in record_files(folder):
            try:
                run, note = read_run(path, attempt, args.project)
            except ResultFileError as err:
                print(f"skipped {path}: {err}", file=sys.stderr)
                skipped += 1
                continue
            if run.run_id in done:
                already += 1
                continue
            if note:
                print(f"{path}: {note}", file=sys.stderr)
            write_run(wandb, run, out, args.project)
            done.add(run.run_id)
            exported += 1
    if exported:
        wandb.teardown()  # the service writes each run's file in the background: done once it has stopped
        print(f"offline runs in {out / 'wandb'}; upload them with make wandb-sync")
    print(f"{exported} exported, {already} already exported" + (f", {skipped} skipped" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
