"""Checkpoints that belong to one experiment cell, and the check before resuming from one.

``CellTag`` stamps every checkpoint with its cell's config hash; ``verify_resumable`` refuses a
corrupt checkpoint or one from another cell with an error naming the file, instead of silently
restarting the cell from scratch or continuing someone else's run.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

CELL_KEY = "lra_snn_cell_hash"


class CellTag(L.Callback):
    """Writes the cell's config hash into every checkpoint this trainer saves."""

    def __init__(self, cell_hash: str) -> None:
        self.cell_hash = cell_hash

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[CELL_KEY] = self.cell_hash


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from; the message names it and how to proceed."""


def verify_resumable(path: Path, cell_hash: str) -> None:
    """Raise CheckpointError unless ``path`` loads and was written by the cell ``cell_hash``."""
    remedy = f"delete {path} to restart this cell from scratch"
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file: truncated, not a checkpoint, wrong format
        raise CheckpointError(f"cannot read checkpoint {path} ({type(error).__name__}: {error}); {remedy}") from error
    found = checkpoint.get(CELL_KEY) if isinstance(checkpoint, dict) else None
    if found != cell_hash:
        raise CheckpointError(f"checkpoint {path} belongs to cell {found!r}, not to this cell {cell_hash!r}; {remedy}")
