"""A signal on cue for the interruption tests: the run sends itself a signal after a given training step."""

from __future__ import annotations

import os
import signal

import lightning as L


class SignalAtStep(L.Callback):
    """Sends ``signal_name`` (e.g. SIGTERM, SIGINT) to this process once training step ``step`` is done."""

    def __init__(self, step: int, signal_name: str) -> None:
        self.step = step
        self.signum = signal.Signals[signal_name]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)
