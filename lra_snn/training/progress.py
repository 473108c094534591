"""What a training prints: Rich's progress bar for a person at a terminal, one plain line per epoch for logs.

Lightning's default (tqdm) bar redraws itself with carriage returns, which a log file keeps as one
endless line. So the bar is shown only where it can be seen, Lightning's ``RichProgressBar`` when
standard output is a terminal and ``rich`` is installed, and every run logs ``EpochLine``'s summary
of each epoch through Python logging (the console and Hydra's log file of the job). The data store's
own bars (``datasets``) are likewise drawn only at a terminal, and ``quiet_libraries`` silences, once at
start-up, what the libraries print about themselves in every cell (Lightning's tips, device banners and
checkpoint-restoring notes; a deprecation warning inside Lightning): their warnings still show.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
import warnings
from typing import Any, TextIO

import lightning.pytorch as pl
from lightning.pytorch.callbacks import RichProgressBar

from lra_snn.training.report import format_metric

log = logging.getLogger(__name__)
TRAIN_LOSS = "train/loss"
# Lightning's informational loggers (seed set, GPU/TPU available, tips, restoring/loading a checkpoint)
LIBRARY_INFO_LOGGERS = ("lightning.pytorch", "lightning.fabric")
# warnings the libraries repeat in every cell, which say nothing about the run
REPEATED_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",  # inside Lightning, on recent torch
    r".*does not have many workers.*",  # data loaders run in the main process by design (data.num_workers)
)


def interactive_progress_bar(enabled: bool, stream: TextIO | None = None) -> RichProgressBar | None:
    """Rich's bar when ``enabled`` (trainer.enable_progress_bar) and ``stream`` (stdout) is a terminal with
    ``rich`` importable; else None, and the trainer shows no bar."""
    stream = sys.stdout if stream is None else stream
    if not enabled or not stream.isatty() or importlib.util.find_spec("rich") is None:
        return None
    return RichProgressBar()


def quiet_libraries(stream: TextIO | None = None) -> None:
    """Lightning's informational lines and the ``REPEATED_WARNINGS`` off (warnings and errors stay), and the
    Hugging Face ``datasets`` progress bars (building and mapping the data store) off unless ``stream``
    (stderr, where they draw) is a terminal."""
    for name in LIBRARY_INFO_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in REPEATED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    stream = sys.stderr if stream is None else stream
    if stream.isatty() or importlib.util.find_spec("datasets") is None:
        return
    import datasets

    datasets.disable_progress_bars()


def _value(metrics: dict, key: str) -> str:
    value = metrics.get(key)
    return "-" if value is None else format_metric(key.split("/")[-1].removesuffix("_epoch"), float(value))


class EpochLine(pl.Callback):
    """Logs ``epoch 3/40: train/loss 1.234, val/acc 45.67 %, 12.3 s`` at the end of every training epoch
    (after that epoch's validation), on global rank zero. ``monitor`` is the validation metric shown
    (the config's ``monitor.metric``); the time covers the epoch's training and validation."""

    def __init__(self, monitor: str) -> None:
        super().__init__()
        self.monitor = monitor
        self._started = time.perf_counter()
        self._batches = 0  # trained in this epoch by this process

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()
        self._batches = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._batches += 1

    def _partial(self, trainer: pl.Trainer) -> str:
        """`` (mean of the N batches since the resume, of M)`` for an epoch resumed inside (a fit from a
        checkpoint whose epoch trained fewer batches here than it has), whose logged mean covers only the
        batches trained in this process; empty otherwise."""
        total = trainer.num_training_batches
        if trainer.ckpt_path is not None and isinstance(total, int) and 0 < self._batches < total:
            return f" (mean of the {self._batches} batches since the resume, of {total})"
        return ""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        epochs = "" if trainer.max_epochs is None or trainer.max_epochs < 0 else f"/{trainer.max_epochs}"
        # logged per step and per epoch, Lightning keeps the epoch mean as "<name>_epoch"
        loss = next((key for key in (f"{TRAIN_LOSS}_epoch", TRAIN_LOSS) if key in metrics), TRAIN_LOSS)
        log.info(
            "epoch %d%s: %s %s, %s %s, %.1f s",
            trainer.current_epoch + 1,
            epochs,
            TRAIN_LOSS,
            _value(metrics, loss) + self._partial(trainer),
            self.monitor,
            _value(metrics, self.monitor),
            time.perf_counter() - self._started,
        )
