"""The lifecycle of one experiment cell: validate, lock, resume, train, evaluate, record.

``run(cfg)`` takes a composed config (``python -m lra_snn.train`` and the tools that train call it):
the config is validated (every bad key named at once, before anything is built), the cell runs under
its lock (one process at a time), a completed cell with the same config hash is not run again
(``skip_completed``; ``skip_completed=false`` trains it again from scratch, the completed training's
files moved aside, and so does a cell whose data files' content changed since it completed), the task is
fit (resuming from the cell's ``last.ckpt`` when one exists), the best
validation checkpoint is evaluated on val and test (a model whose neurons approximate exact ones is
tested a second time with the exact neurons, ``lra_snn.training.surrogate_agreement``), and the outcome is
recorded for the leaderboard (``lra_snn.results.record``: a completed ``result.json`` is never replaced by
a worse outcome).
SIGTERM or SIGINT stops it with a resumable checkpoint and the outcome "interrupted".
"""

from __future__ import annotations

import logging
import signal
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from lra_snn.config import cell_hash
from lra_snn.config.provenance import instantiated_digest
from lra_snn.data.errors import BlockedPathError, DataNotFoundError
from lra_snn.results.curves import METRICS_FILENAME
from lra_snn.results.record import code_version, git_commit, library_versions, read_result, store_result
from lra_snn.results.schema import ResultFileError, ResultRecord, Segment, new_record
from lra_snn.training.build import best_checkpoint, build_task, build_trainer, finish_wandb, log_resolved_config
from lra_snn.training.checkpoints import CellTag, verify_resumable
from lra_snn.training.interrupt import StopOnSignal
from lra_snn.training.lock import CellLockedError, cell_lock
from lra_snn.training.metrics_table import MetricsTable
from lra_snn.training.names import UnsafeNameError, check_cell_paths
from lra_snn.training.report import format_count, metrics_line
from lra_snn.training.segments import SegmentLog
from lra_snn.training.surrogate_agreement import exact_neuron_metrics
from lra_snn.training.validate import validate_config

log = logging.getLogger(__name__)
TRAINING_FOLDERS = ("checkpoints", "logs")  # what a training writes under its run folder (CSV logger: name logs)
REPLACED_DIRNAME = "replaced"


class RunFailed(RuntimeError):
    """Training or evaluation of a cell failed; recorded as "failed" (under attempts/ beside a completed result)."""


class RunInterrupted(RuntimeError):
    """SIGTERM or SIGINT stopped the cell; recorded as "interrupted" and resumable from its last.ckpt."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class CellRefused(RuntimeError):
    """The cell was not run and nothing was recorded: another process runs it, a name would leave its
    folders, or its result file cannot be read. The message names the file or key and the remedy."""


def _is_rank_zero() -> bool:
    """Global rank zero, from the launcher's environment (before a trainer exists)."""
    return rank_zero_only.rank == 0  # type: ignore[attr-defined]


def _identity(cfg: DictConfig) -> dict[str, Any]:
    """What a result file says about its run; read when the cell starts (the commit whose code runs)."""
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    return {
        "task": cfg.task_name,
        "model": cfg.model.name,
        "seed": int(cfg.seed),
        "profile": cfg.profile_name,
        "config_hash": cell_hash(cfg),
        "code_version": code_version(),
        "git_commit": git_commit(),
        "versions": library_versions(),
        "config": config,
        "instantiated_digest": instantiated_digest(config),
    }


def _cost(segments: tuple[Segment, ...], steps: int) -> dict[str, Any]:
    """Steps, segments and their summed wall time, as result fields."""
    return {
        "steps": steps,
        "wall_time_s": sum(segment.wall_time_s for segment in segments),
        "segments": [segment.to_json() for segment in segments],
    }


def _record(result_path: Path, fields: dict[str, Any], write: bool) -> dict[str, Any]:
    """Store the outcome (when ``write``: rank zero) without replacing a completed result; return it as JSON."""
    if not write:
        return new_record(fields).to_json()
    record, written = store_result(result_path, fields)
    if written != result_path:
        log.warning("%s kept (completed); this %s outcome is recorded in %s", result_path, record.status, written)
    return record.to_json()


def _failed(
    cfg: DictConfig,
    identity: dict[str, Any],
    result_path: Path,
    error: Exception,
    steps: int,
    segments: SegmentLog,
    write: bool,
) -> RunFailed:
    """Record the cell as failed (when ``write``: rank zero) and return the error to raise."""
    message = f"{type(error).__name__} in cell {cfg.paths.cell}: {error}"
    _record(
        result_path,
        {**identity, "status": "failed", "message": message, **_cost(segments.segments(steps), steps)},
        write,
    )
    return RunFailed(message)


def _interrupted(
    cfg: DictConfig,
    identity: dict[str, Any],
    result_path: Path,
    trainer: L.Trainer,
    stop: StopOnSignal,
    segments: SegmentLog,
) -> RunInterrupted:
    """Record the cell as interrupted (rank zero) and return the error to raise."""
    steps = trainer.global_step
    if stop.saved_step is not None:
        saved = f"{stop.checkpoint} saved at global step {stop.saved_step}"
    elif stop.checkpoint.exists():
        saved = f"it resumes from {stop.checkpoint}, the last checkpoint written before the signal"
    else:
        saved = "no checkpoint was written yet, so it starts over"
    message = (
        f"stopped by {signal.Signals(stop.signal).name} at global step {steps} in cell {cfg.paths.cell}; "
        f"{saved}; launch the cell again to continue"
    )
    _record(
        result_path,
        {**identity, "status": "interrupted", "message": message, **_cost(segments.segments(steps), steps)},
        trainer.is_global_zero,
    )
    return RunInterrupted(message, stop.signal)


def _data_change(cfg: DictConfig, previous: ResultRecord) -> str | None:
    """Why the completed ``previous`` run read other data files than this cell reads now (their content
    digest differs: a release or source file changed), or None when it read the same, when its record
    predates data digests, or when the data cannot be found now (the completed result stands)."""
    if previous.data is None:
        return None
    try:
        now = instantiate(cfg.data).data_identity()["digest"]
    except DataNotFoundError:
        return None
    if now == previous.data.digest:
        return None
    return (
        f"the data files changed since this cell completed (content digest {previous.data.digest[:16]}, now "
        f"{now[:16]}; read from {', '.join(previous.data.sources)})"
    )


def _train_again(run_dir: Path, previous: ResultRecord, reason: str) -> None:
    """Move a completed cell's checkpoints and logs to ``replaced/<its finished_at>/``, so that the cell
    trains from scratch (``skip_completed=false``, or its data changed: ``reason``) and the completed
    training's files are kept."""
    stamp = datetime.fromtimestamp(previous.finished_at, timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = run_dir / REPLACED_DIRNAME / stamp
    for name in TRAINING_FOLDERS:
        if (run_dir / name).exists():
            aside.mkdir(parents=True, exist_ok=True)
            (run_dir / name).rename(aside / name)
    log.warning(
        "%s: training again from scratch; the completed training's %s are in %s, its "
        "result stays until this run completes (then it moves to attempts/)",
        reason,
        " and ".join(TRAINING_FOLDERS),
        aside,
    )


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run one cell under its lock and return its record (as JSON; the stored one when the cell is skipped)."""
    validate_config(cfg)  # every bad value named at once, before anything is built or recorded
    try:
        check_cell_paths(cfg)
    except UnsafeNameError as error:
        raise CellRefused(str(error)) from None
    if not _is_rank_zero():  # the other processes of a multi-device run follow rank zero, which holds the lock
        return _run_cell(cfg)
    try:
        with cell_lock(Path(cfg.paths.run_dir)):
            return _run_cell(cfg)
    except CellLockedError as error:  # raised only on entry: nothing of the cell ran
        raise CellRefused(str(error)) from None


def _run_cell(cfg: DictConfig) -> dict[str, Any]:
    result_path = Path(cfg.paths.result_file)
    run_dir = Path(cfg.paths.run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    try:
        previous = read_result(result_path)
    except ResultFileError as error:
        raise CellRefused(f"{error}; correct that file or move it away to run this cell") from None
    if previous is not None and previous.status == "completed":
        changed = _data_change(cfg, previous) if cfg.skip_completed else None  # trained again either way if not
        if cfg.skip_completed and changed is None:
            log.info("cell already completed, skipping (skip_completed=false to rerun): %s", result_path)
            return previous.to_json()
        if _is_rank_zero():
            _train_again(run_dir, previous, changed or "skip_completed=false")

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    L.seed_everything(cfg.seed, workers=True)
    segments = SegmentLog()
    identity = _identity(cfg)
    datamodule = instantiate(cfg.data)
    try:
        datamodule.prepare_data()
    except KeyboardInterrupt:  # Ctrl-C while the data cache is built: its staging folder is already removed
        raise RunInterrupted(
            f"stopped by SIGINT while the data of cell {cfg.paths.cell} was prepared, before any training; "
            "nothing was recorded or cached; launch the cell again to prepare it anew",
            signal.SIGINT,
        ) from None
    except BlockedPathError as blocked:  # raised before anything was built: nothing to record
        raise CellRefused(str(blocked)) from None
    except DataNotFoundError as missing:
        log.error("no data for %s: %s", cfg.task_name, missing)
        return _record(result_path, {**identity, "status": "no_data", "message": str(missing)}, _is_rank_zero())
    identity["data"] = datamodule.data_identity()

    cell = identity["config_hash"]
    stop = StopOnSignal(last)
    curves = MetricsTable()
    try:
        if last.exists():
            segments.resume(verify_resumable(last, cell))
        task = build_task(cfg, datamodule)
        trainer = build_trainer(cfg, [CellTag(cell), segments, curves, stop])
    except Exception as error:  # a checkpoint, model or trainer that cannot be used: recorded as failed
        raise _failed(cfg, identity, result_path, error, 0, segments, _is_rank_zero()) from error
    segments.restore_metric_rows(trainer.loggers)  # before the loggers are used: the CSV logger empties its file
    log_resolved_config(trainer, cfg)
    parameters = list(task.parameters())
    log.info(
        "model %s: %s parameters (%s trainable)",
        cfg.model.name,
        format_count(sum(p.numel() for p in parameters)),
        format_count(sum(p.numel() for p in parameters if p.requires_grad)),
    )
    try:
        with stop:
            if segments.resumed:
                log.info("resuming from %s", last)
            trainer.fit(task, datamodule=datamodule, ckpt_path=str(last) if segments.resumed else None)
            if trainer.received_sigterm:  # arrived after the training loops last looked
                raise SIGTERMException
            best = best_checkpoint(trainer)
            val = trainer.validate(task, datamodule=datamodule, ckpt_path=best, verbose=False)
            test = trainer.test(task, datamodule=datamodule, ckpt_path=best, verbose=False)
            exact = exact_neuron_metrics(trainer, task, datamodule, best)
    except (SystemExit, KeyboardInterrupt) as error:  # Lightning's stop on SIGTERM / SIGINT
        raise _interrupted(cfg, identity, result_path, trainer, stop, segments) from error
    except Exception as error:
        raise _failed(
            cfg, identity, result_path, error, trainer.global_step, segments, trainer.is_global_zero
        ) from error
    finally:
        finish_wandb(trainer)

    fields = {
        **identity,
        "status": "completed",
        "metrics": {
            **{key: float(value) for results in (val, test) for key, value in results[0].items()},
            **exact,
            **datamodule.summary_metrics(),
        },
        "best_checkpoint": best,
        **_cost(segments.segments(trainer.global_step), trainer.global_step),
        "n_params": sum(p.numel() for p in task.parameters()),
        "device": torch.cuda.get_device_name() if trainer.strategy.root_device.type == "cuda" else "cpu",
        "metrics_file": METRICS_FILENAME,  # the learning curves, beside result.json (lra_snn.results.curves)
    }
    if trainer.is_global_zero:
        curves.write(result_path.parent / METRICS_FILENAME)
    record = _record(result_path, fields, trainer.is_global_zero)
    for split in ("val", "test"):
        log.info("%s", metrics_line(split, record["metrics"]))
    log.info("recorded %s", result_path)
    return record
