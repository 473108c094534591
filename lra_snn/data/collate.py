"""Batches of the classification tasks: padding to the batch's longest sequence, pixel conversion.

Every batch is ``{"inputs", "lengths", "labels"}`` (int64 ``lengths`` and ``labels``). Token
sequences are padded with ``<pad>`` to the longest in the batch (the encoder masks by
``lengths``); pairs (LRA Retrieval) pad both documents to the longest of the batch. Pixels are
either values, ``(pixel - mean) / std`` as float32 of shape (B, L, 1), or tokens, ``pixel + 3``
(256 gray levels after the specials). The work is done in numpy on whole batches (the views of
``lra_snn.data.views`` hand over a batch at a time) and leaves torch's thread pool alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from lra_snn.data.tokenizers import PAD_ID, SPECIAL_TOKENS

PIXEL_MODES = ("values", "tokens")


def pad(sequences: Sequence[np.ndarray], pad_id: int = PAD_ID) -> tuple[np.ndarray, np.ndarray]:
    """``(ids (B, L_max) int64 padded with pad_id, lengths (B,) int64)`` of ``sequences``."""
    if not len(sequences):
        raise ValueError("cannot collate an empty batch")
    lengths = np.fromiter((len(sequence) for sequence in sequences), dtype=np.int64, count=len(sequences))
    padded = np.full((len(sequences), int(lengths.max())), pad_id, dtype=np.int64)
    for row, sequence in zip(padded, sequences):
        row[: len(sequence)] = sequence
    return padded, lengths


def collate_tokens(batch: tuple[Sequence[np.ndarray], np.ndarray]) -> dict[str, Tensor]:
    """``inputs`` (B, L_max), ``lengths`` (B,), ``labels`` (B,) from ``(id arrays, labels)``."""
    sequences, labels = batch
    inputs, lengths = pad(sequences)
    return {
        "inputs": torch.from_numpy(inputs),
        "lengths": torch.from_numpy(lengths),
        "labels": torch.from_numpy(np.asarray(labels, dtype=np.int64)),
    }


def collate_pairs(batch: tuple[Sequence[np.ndarray], Sequence[np.ndarray], np.ndarray]) -> dict[str, Tensor]:
    """``inputs`` (B, 2, L_max), ``lengths`` (B, 2), ``labels`` (B,) from ``(firsts, seconds, labels)``."""
    first, second, labels = batch
    inputs, lengths = pad([document for pair in zip(first, second) for document in pair])
    return {
        "inputs": torch.from_numpy(inputs.reshape(len(labels), 2, -1)),
        "lengths": torch.from_numpy(lengths.reshape(len(labels), 2)),
        "labels": torch.from_numpy(np.asarray(labels, dtype=np.int64)),
    }


class PixelCollate:
    """Pixels (B, L) uint8 as values ``(pixel - mean) / std`` (B, L, 1) or as tokens ``pixel + 3`` (B, L).

    A class rather than a closure so DataLoader workers can pickle it.
    """

    def __init__(self, mode: str, mean: float = 0.0, std: float = 1.0) -> None:
        if mode not in PIXEL_MODES:
            raise ValueError(f"mode must be one of {PIXEL_MODES}, got {mode!r}")
        if std <= 0:
            raise ValueError(f"the pixel std must be positive, got {std}")
        self.mode = mode
        self.mean = np.float32(mean)
        self.std = np.float32(std)

    def __call__(self, batch: tuple[np.ndarray, np.ndarray]) -> dict[str, Tensor]:
        pixels, labels = batch
        if self.mode == "values":
            values = pixels.astype(np.float32)
            if self.mean:
                values -= self.mean
            values /= self.std  # in place: a Path-X batch is 16,384 floats per image
            inputs = torch.from_numpy(values).unsqueeze(-1)
        else:
            inputs = torch.from_numpy(pixels.astype(np.int64) + len(SPECIAL_TOKENS))
        return {
            "inputs": inputs,
            "lengths": torch.full((len(labels),), pixels.shape[1], dtype=torch.long),
            "labels": torch.from_numpy(np.asarray(labels, dtype=np.int64)),
        }
