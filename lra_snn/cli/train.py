"""Train and test one experiment cell: ``python -m lra_snn.train [overrides]`` (Hydra).

Thin by design: seed, instantiate data / model / task / trainer from their ``_target_``, fit
(resuming from the cell's ``last.ckpt`` when one exists), evaluate the best validation
checkpoint on val and test, and record the outcome for the leaderboard (``lra_snn.results.record``:
a completed ``result.json`` is never replaced by a worse outcome). A completed cell with the same
config hash is not run again (``skip_completed``; ``skip_completed=false`` trains it again from
scratch). A cell runs under a lock (one process at a time); SIGTERM or SIGINT stops it with a
resumable checkpoint, the outcome "interrupted" and exit status 128 + signal number.
"""

from __future__ import annotations

import logging
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from lra_snn.config import CONF_DIR, cell_hash, register_resolvers
from lra_snn.config.override_hints import unknown_key_hints
from lra_snn.config.validate import validate_config
from lra_snn.data.base import TaskData
from lra_snn.data.errors import DataNotFoundError
from lra_snn.results.curves import METRICS_FILENAME, MetricsTable
from lra_snn.results.provenance import instantiated_digest
from lra_snn.results.record import code_version, git_commit, library_versions, read_result, store_result
from lra_snn.results.schema import ResultFileError, ResultRecord, Segment, new_record
from lra_snn.training.checkpoints import CellTag, verify_resumable
from lra_snn.training.interrupt import StopOnSignal
from lra_snn.training.lock import CellLockedError, cell_lock
from lra_snn.training.names import UnsafeNameError, check_cell_paths, check_overrides
from lra_snn.training.progress import EpochLine, interactive_progress_bar, quiet_data_bars
from lra_snn.training.segments import SegmentLog

log = logging.getLogger(__name__)
register_resolvers()
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


def _instantiate_all(node: DictConfig | None) -> list:
    return [instantiate(c) for c in (node or {}).values() if c is not None]


def _compile_requested(cfg: DictConfig) -> bool:
    """``trainer.compile`` (absent from configs recorded before it existed: false)."""
    value = cfg.trainer.get("compile", False)
    if not isinstance(value, bool):
        raise ValueError(f"trainer.compile={value!r}: expected true or false")
    return value


def build_task(cfg: DictConfig, datamodule: TaskData) -> L.LightningModule:
    """The task of ``cfg`` (encoder + head + optimiser settings), sized by the datamodule's inputs and classes;
    its checkpoints carry ``cfg`` resolved, so ``load_from_checkpoint`` rebuilds it (``lra_snn.tasks.base``).
    With ``trainer.compile=true`` the encoder is compiled in place (``nn.Module.compile``: its parameter
    names, hence its checkpoints, are those of the plain module)."""
    compile_encoder = _compile_requested(cfg)
    encoder = instantiate(cfg.model.encoder, **datamodule.encoder_kwargs())
    if compile_encoder:
        encoder.compile()
    task = instantiate(cfg.task, encoder=encoder, **datamodule.task_kwargs())
    task.remember_run(OmegaConf.to_container(cfg, resolve=True), datamodule.encoder_kwargs())
    return task


def build_trainer(cfg: DictConfig, extra_callbacks: list[L.Callback]) -> L.Trainer:
    """The trainer of ``cfg`` with its loggers and callbacks plus ``extra_callbacks``, rooted at the run folder.

    Its progress output: Rich's bar at a terminal (``lra_snn.training.progress``), else none, and one
    logged line per epoch."""
    options = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(options, dict)
    options.pop("compile", None)  # ours (build_task), not a Trainer argument
    bar = interactive_progress_bar(bool(options.get("enable_progress_bar", True)))
    return instantiate(
        options,
        enable_progress_bar=bar is not None,
        default_root_dir=str(cfg.paths.run_dir),
        logger=_instantiate_all(cfg.logger),
        callbacks=[
            *_instantiate_all(cfg.callbacks),
            *extra_callbacks,
            *([bar] if bar is not None else []),
            EpochLine(cfg.monitor.metric),
        ],
    )


def best_checkpoint(trainer: L.Trainer) -> str | None:
    """The best checkpoint of the monitored metric so far (None: none saved; the last weights are evaluated)."""
    monitored = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.monitor is not None]
    return (monitored[0].best_model_path or None) if monitored else None


def _log_resolved_config(trainer: L.Trainer, cfg: DictConfig) -> None:
    """Give every logger the whole resolved config (wandb: the run's config; CSV: hparams.yaml)."""
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    for logger in trainer.loggers:
        logger.log_hyperparams({str(key): value for key, value in config.items()})


def _finish_wandb(trainer: L.Trainer) -> None:
    """Close the wandb run, so the next job of a multirun in this process starts its own run."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


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


def _train_again(run_dir: Path, previous: ResultRecord) -> None:
    """Move a completed cell's checkpoints and logs to ``replaced/<its finished_at>/``, so that
    ``skip_completed=false`` trains from scratch and the completed training's files are kept."""
    stamp = datetime.fromtimestamp(previous.finished_at, timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = run_dir / REPLACED_DIRNAME / stamp
    for name in TRAINING_FOLDERS:
        if (run_dir / name).exists():
            aside.mkdir(parents=True, exist_ok=True)
            (run_dir / name).rename(aside / name)
    log.info(
        "skip_completed=false: training again from scratch; the completed training's %s are in %s, its "
        "result stays until this run completes (then it moves to attempts/)",
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
        if cfg.skip_completed:
            log.info("cell already completed, skipping (skip_completed=false to rerun): %s", result_path)
            return previous.to_json()
        if _is_rank_zero():
            _train_again(run_dir, previous)

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    L.seed_everything(cfg.seed, workers=True)
    segments = SegmentLog()
    identity = _identity(cfg)
    datamodule = instantiate(cfg.data)
    try:
        datamodule.prepare_data()
    except DataNotFoundError as missing:
        log.error("no data for %s: %s", cfg.task_name, missing)
        return _record(result_path, {**identity, "status": "no_data", "message": str(missing)}, _is_rank_zero())

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
    _log_resolved_config(trainer, cfg)
    try:
        with stop:
            if segments.resumed:
                log.info("resuming from %s", last)
            trainer.fit(task, datamodule=datamodule, ckpt_path=str(last) if segments.resumed else None)
            if trainer.received_sigterm:  # arrived after the training loops last looked
                raise SIGTERMException
            best = best_checkpoint(trainer)
            val = trainer.validate(task, datamodule=datamodule, ckpt_path=best)
            test = trainer.test(task, datamodule=datamodule, ckpt_path=best)
    except (SystemExit, KeyboardInterrupt) as error:  # Lightning's stop on SIGTERM / SIGINT
        raise _interrupted(cfg, identity, result_path, trainer, stop, segments) from error
    except Exception as error:
        raise _failed(
            cfg, identity, result_path, error, trainer.global_step, segments, trainer.is_global_zero
        ) from error
    finally:
        _finish_wandb(trainer)

    fields = {
        **identity,
        "status": "completed",
        "metrics": {
            **{key: float(value) for results in (val, test) for key, value in results[0].items()},
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
    log.info("test metrics %s -> %s", record["metrics"], result_path)
    return record


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the monitored metric (for sweepers). In a multirun a failed cell
    is recorded and logged, and the sweep goes on with the next cell; a single run exits non-zero.
    An interrupted cell ends the process (a sweep too) with exit status 128 + signal number."""
    quiet_data_bars()
    try:
        record = run(cfg)
    except RunInterrupted as stop:  # a sweep stops too: the scheduler or the user asked for it
        log.error("%s", stop)
        raise SystemExit(128 + stop.signum) from None
    except (RunFailed, CellRefused) as failure:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        log.error("%s; the sweep goes on with the next cell", failure)
        return None
    return (record.get("metrics") or {}).get(cfg.monitor.metric)


def cli() -> None:
    """Command-line entry (``python -m lra_snn.train``, ``lra-train``): the names on the command line
    checked, ``main``, and when Hydra refuses the command, a hint naming the config keys closest to
    any unknown override key."""
    try:
        check_overrides(sys.argv[1:])
    except UnsafeNameError as error:
        print(f"lra-train: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        main()
    except SystemExit as stop:
        if stop.code not in (0, None) and not (isinstance(stop.code, int) and stop.code >= 128):  # not a signal
            for hint in unknown_key_hints(sys.argv[1:]):
                print(hint, file=sys.stderr)
        raise


if __name__ == "__main__":
    cli()
