"""Train and test one experiment cell: ``python -m lra_snn.train [overrides]`` (Hydra).

Thin by design: seed, instantiate data / model / task / trainer from their ``_target_``, fit
(resuming from the cell's ``last.ckpt`` when one exists), evaluate the best validation
checkpoint on val and test, and write ``result.json`` for the leaderboard. A completed cell with
the same config hash is not run again (``skip_completed``).
"""

from __future__ import annotations

import logging
import sys
import time
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
from omegaconf import DictConfig, OmegaConf

from lra_snn.training.checkpoints import CellTag, verify_resumable
from lra_snn.config import CONF_DIR, cell_hash, register_resolvers
from lra_snn.data.base import TaskData
from lra_snn.data.errors import DataNotFoundError
from lra_snn.config.override_hints import unknown_key_hints
from lra_snn.config.validate import validate_config
from lra_snn.results.record import git_commit, library_versions, read_result, write_result

log = logging.getLogger(__name__)
register_resolvers()


class RunFailed(RuntimeError):
    """Training or evaluation of a cell failed; its result file records status "failed"."""


def _identity(cfg: DictConfig) -> dict[str, Any]:
    """What a result file says about its run; read when the cell starts (the commit whose code runs)."""
    return {"task": cfg.task_name, "model": cfg.model.name, "seed": int(cfg.seed),
            "profile": cfg.profile_name, "config_hash": cell_hash(cfg),
            "git_commit": git_commit(), "versions": library_versions(),
            "config": OmegaConf.to_container(cfg, resolve=True)}


def _instantiate_all(node: DictConfig | None) -> list:
    return [instantiate(c) for c in (node or {}).values() if c is not None]


def build_task(cfg: DictConfig, datamodule: TaskData) -> L.LightningModule:
    """The task of ``cfg`` (encoder + head + optimiser settings), sized by the datamodule's inputs and classes."""
    encoder = instantiate(cfg.model.encoder, **datamodule.encoder_kwargs())
    return instantiate(cfg.task, encoder=encoder, **datamodule.task_kwargs())


def build_trainer(cfg: DictConfig, extra_callbacks: list[L.Callback]) -> L.Trainer:
    """The trainer of ``cfg`` with its loggers and callbacks plus ``extra_callbacks``, rooted at the run folder."""
    return instantiate(cfg.trainer, default_root_dir=str(cfg.paths.run_dir), logger=_instantiate_all(cfg.logger),
                       callbacks=[*_instantiate_all(cfg.callbacks), *extra_callbacks])


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


def _failed(cfg: DictConfig, identity: dict[str, Any], result_path: Path, error: Exception, steps: int,
            started: float, write: bool) -> RunFailed:
    """Record the cell as failed (when ``write``: rank zero) and return the error to raise."""
    message = f"{type(error).__name__} in cell {cfg.paths.cell}: {error}"
    if write:
        write_result(result_path, {**identity, "status": "failed", "message": message,
                                   "steps": steps, "wall_time_s": time.time() - started})
    return RunFailed(message)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run one cell and return the record written to its result file."""
    validate_config(cfg)  # every bad value named at once, before anything is built or recorded
    result_path = Path(cfg.paths.result_file)
    previous = read_result(result_path)
    if cfg.skip_completed and previous and previous.get("status") == "completed":
        log.info("cell already completed, skipping (skip_completed=false to rerun): %s", result_path)
        return previous

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    L.seed_everything(cfg.seed, workers=True)
    started = time.time()
    identity = _identity(cfg)
    datamodule = instantiate(cfg.data)
    try:
        datamodule.prepare_data()
    except DataNotFoundError as missing:
        record = {**identity, "status": "no_data", "message": str(missing)}
        write_result(result_path, record)
        log.error("no data for %s: %s", cfg.task_name, missing)
        return record

    run_dir = Path(cfg.paths.run_dir)
    cell = cell_hash(cfg)
    try:
        task = build_task(cfg, datamodule)
        trainer = build_trainer(cfg, [CellTag(cell)])
    except Exception as error:  # a model or trainer that cannot be built: the cell fails, recorded
        raise _failed(cfg, identity, result_path, error, steps=0, started=started, write=True) from error
    _log_resolved_config(trainer, cfg)
    last = run_dir / "checkpoints" / "last.ckpt"
    try:
        if last.exists():
            verify_resumable(last, cell)
            log.info("resuming from %s", last)
        trainer.fit(task, datamodule=datamodule, ckpt_path=str(last) if last.exists() else None)
        best = best_checkpoint(trainer)
        val = trainer.validate(task, datamodule=datamodule, ckpt_path=best)
        test = trainer.test(task, datamodule=datamodule, ckpt_path=best)
    except Exception as error:
        raise _failed(cfg, identity, result_path, error, trainer.global_step, started,
                      trainer.is_global_zero) from error
    finally:
        _finish_wandb(trainer)

    record = {
        **identity,
        "status": "completed",
        "metrics": {
            **{key: float(value) for results in (val, test) for key, value in results[0].items()},
            **datamodule.summary_metrics(),
        },
        "best_checkpoint": best,
        "wall_time_s": time.time() - started,
        "steps": trainer.global_step,
        "n_params": sum(p.numel() for p in task.parameters()),
        "device": torch.cuda.get_device_name() if trainer.strategy.root_device.type == "cuda" else "cpu",
    }
    if trainer.is_global_zero:
        write_result(result_path, record)
        log.info("test metrics %s -> %s", record["metrics"], result_path)
    return record


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the monitored metric (for sweepers). In a multirun a failed cell
    is recorded and logged, and the sweep goes on with the next cell; a single run exits non-zero."""
    try:
        record = run(cfg)
    except RunFailed as failure:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        log.error("%s; the sweep goes on (the leaderboard marks the cell failed)", failure)
        return None
    return (record.get("metrics") or {}).get(cfg.monitor.metric)


def cli() -> None:
    """Command-line entry (``python -m lra_snn.train``, ``lra-train``): ``main``, and when Hydra
    refuses the command, a hint naming the config keys closest to any unknown override key."""
    try:
        main()
    except SystemExit as stop:
        if stop.code not in (0, None):
            for hint in unknown_key_hints(sys.argv[1:]):
                print(hint, file=sys.stderr)
        raise


if __name__ == "__main__":
    cli()
