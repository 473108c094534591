"""Checkpoints that belong to one experiment cell, and resuming from them.

``CellTag`` stamps every checkpoint with its cell's config hash; ``verify_resumable`` refuses a
corrupt checkpoint or one from another cell with an error naming the file, instead of silently
restarting the cell from scratch or continuing someone else's run. ``ResumeMidEpoch`` makes a run
resumed from a mid-epoch checkpoint train on the rest of that epoch's batches, in order, instead of
Lightning's default of starting the epoch's data over (which repeats some batches and never
reaches the last ones).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch

from lra_snn.data.base import EpochSeededSampler

CELL_KEY = "lra_snn_cell_hash"
log = logging.getLogger(__name__)
# Lightning's warning for loaders without state_dict; ResumeMidEpoch handles the case it warns about
_NOT_RESUMABLE_WARNING = "You're resuming from a checkpoint that ended before the epoch ended"


class CellTag(L.Callback):
    """Writes the cell's config hash into every checkpoint this trainer saves."""

    def __init__(self, cell_hash: str) -> None:
        self.cell_hash = cell_hash

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[CELL_KEY] = self.cell_hash


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from; the message names it and how to proceed."""


def verify_resumable(path: Path, cell_hash: str) -> dict[str, Any]:
    """The checkpoint at ``path``; CheckpointError unless it loads and was written by the cell ``cell_hash``."""
    remedy = f"delete {path} to restart this cell from scratch"
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file: truncated, not a checkpoint, wrong format
        raise CheckpointError(f"cannot read checkpoint {path} ({type(error).__name__}: {error}); {remedy}") from error
    found = checkpoint.get(CELL_KEY) if isinstance(checkpoint, dict) else None
    if found != cell_hash:
        raise CheckpointError(f"checkpoint {path} belongs to cell {found!r}, not to this cell {cell_hash!r}; {remedy}")
    return checkpoint


class ResumeMidEpoch(L.Callback):
    """On a restart inside an epoch, skips the batches of that epoch trained before the checkpoint.

    Lightning restores the loop counters (batch ``k`` of epoch ``e`` is next) but iterates the
    training loader from its start. With an ``EpochSeededSampler`` the epoch's order is a function
    of (seed, epoch), so the first ``k`` batches are known and are left out. Other samplers (e.g.
    the one Lightning puts in under DDP) are left alone, with a warning.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed  # type: ignore[attr-defined]
        if not trainer.fit_loop.restarted_mid_epoch or not 0 < done < trainer.num_training_batches:
            return
        loader = trainer.train_dataloader
        sampler = getattr(loader, "sampler", None)
        if not isinstance(sampler, EpochSeededSampler):
            log.warning(
                "resuming inside epoch %d: the training sampler is %s, not an EpochSeededSampler, so the "
                "epoch's data starts over",
                trainer.current_epoch,
                type(sampler).__name__,
            )
            return
        sampler.resume_after(done * getattr(loader, "batch_size", 1))
        warnings.filterwarnings("ignore", message=_NOT_RESUMABLE_WARNING)
        log.info(
            "resuming inside epoch %d: %d of its %d batches were trained before the checkpoint; "
            "training goes on with batch %d",
            trainer.current_epoch,
            done,
            trainer.num_training_batches,
            done,
        )
