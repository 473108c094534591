"""SIGTERM and SIGINT stop a run at the next batch boundary with a checkpoint to resume from.

Lightning handles SIGTERM while a trainer runs (fit, validate, test): its handler sets
``trainer.received_sigterm`` and the loops raise ``SIGTERMException`` once the current batch is done
(a ``SystemExit``, so left alone the process would exit 0 without a result). ``StopOnSignal``
builds on that:

- while its ``with`` block runs, SIGINT is passed on as SIGTERM, so Ctrl-C stops the same way; a
  second SIGINT interrupts at once (``KeyboardInterrupt``), as Ctrl-C usually does;
- as a callback, it saves ``last.ckpt`` at the end of the training batch during which the signal
  arrived, as a step checkpoint is saved, so a resume continues as after one. Not after a batch
  that validation or an optimizer step of gradient accumulation follows: Lightning stops before
  those, and a run resumed from there would skip them. Then, and for a signal during validation,
  the last checkpoint written before the signal stays the one to resume from;
- ``signal`` says which signal stopped the run, for the exit status (128 + signal number).

The caller records the run as interrupted and exits non-zero; a relaunch resumes from ``last.ckpt``.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import lightning as L


class StopOnSignal(L.Callback):
    """Context manager (SIGINT as SIGTERM) and callback (``last.ckpt`` on the stop); see the module docstring."""

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint
        self.signal = signal.SIGTERM  # until a SIGINT arrives: Lightning stops only on SIGTERM
        self.saved_step: int | None = None
        self._sigints = 0
        self._previous: Any = None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._sigints += 1
        if self._sigints > 1:
            raise KeyboardInterrupt
        self.signal = signal.SIGINT
        signal.raise_signal(signal.SIGTERM)

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.received_sigterm and self.saved_step is None and not _work_pending(trainer, batch_idx):
            trainer.save_checkpoint(self.checkpoint)
            self.saved_step = trainer.global_step


def _work_pending(trainer: L.Trainer, batch_idx: int) -> bool:
    """Whether validation or the optimizer step of an accumulation may be due after batch ``batch_idx``
    (an over-estimate: the epoch's last batch, every ``val_check_batch``-th batch of the epoch or the run)."""
    done = batch_idx + 1
    if done % trainer.accumulate_grad_batches or done >= trainer.num_training_batches:
        return True
    every = trainer.val_check_batch
    if every is None or every == float("inf"):
        return False
    return done % int(every) == 0 or trainer.global_step % int(every) == 0
