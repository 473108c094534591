"""What a cell's config builds: the task around its encoder, and the trainer with its loggers and callbacks.

Every object comes from a ``_target_`` of the composed config; the run (``lra_snn.training.cell``),
the evaluation tools and the kernel-parity check all build through these functions.
"""

from __future__ import annotations

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from lra_snn.data.base import TaskData
from lra_snn.training.progress import EpochLine, interactive_progress_bar
from lra_snn.training.solver_statistics import SolverStatistics
from lra_snn.training.surrogate_agreement import SurrogateAgreement


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

    Every trainer also logs the iterative neuron solvers' statistics (``SolverStatistics``) and the surrogate
    neurons' agreement with their exact neurons (``SurrogateAgreement``), for any task.
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
            SolverStatistics(),
            SurrogateAgreement(),
            *([bar] if bar is not None else []),
            EpochLine(cfg.monitor.metric),
        ],
    )


def best_checkpoint(trainer: L.Trainer) -> str | None:
    """The best checkpoint of the monitored metric so far (None: none saved; the last weights are evaluated)."""
    monitored = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.monitor is not None]
    return (monitored[0].best_model_path or None) if monitored else None


def log_resolved_config(trainer: L.Trainer, cfg: DictConfig) -> None:
    """Give every logger the whole resolved config (wandb: the run's config; CSV: hparams.yaml)."""
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    for logger in trainer.loggers:
        logger.log_hyperparams({str(key): value for key, value in config.items()})


def finish_wandb(trainer: L.Trainer) -> None:
    """Close the wandb run, so the next job of a multirun in this process starts its own run."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
