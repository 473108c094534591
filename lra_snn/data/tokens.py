"""Token-sequence splits stored flat on disk and padded per batch (data.md: "pad per batch and pass lengths").

A split is three ``.npy`` files, memory-mapped when loaded (nanoGPT's prepare-once memmap, layout.md):
``tokens.npy`` (every sequence concatenated, the smallest unsigned dtype that holds the vocabulary),
``offsets.npy`` (int64, n + 1 boundaries: sequence i is ``tokens[offsets[i]:offsets[i + 1]]``) and
``labels.npy`` (int64, n). Every token dataset shares the special ids ``<pad>`` = 0, ``<unk>`` = 1,
``<eos>`` = 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

SPECIAL_TOKENS = ("<pad>", "<unk>", "<eos>")
PAD_ID, UNK_ID, EOS_ID = 0, 1, 2

TOKENS_FILE = "tokens.npy"
OFFSETS_FILE = "offsets.npy"
LABELS_FILE = "labels.npy"


def token_dtype(vocab_size: int) -> np.dtype:
    """Smallest unsigned integer dtype that holds every id below ``vocab_size``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise ValueError(f"vocab_size {vocab_size} does not fit in 32 bits")


@dataclass(frozen=True)
class TokenSplit:
    """One split: flat token ids, sequence boundaries and labels (arrays or read-only memmaps)."""

    tokens: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def sequence(self, index: int) -> np.ndarray:
        """Token ids of sequence ``index``."""
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]

    def lengths(self) -> np.ndarray:
        """Length of every sequence."""
        return np.diff(self.offsets)


def save_token_split(
    directory: str | Path, sequences: Sequence[np.ndarray], labels: Sequence[int] | np.ndarray, vocab_size: int
) -> None:
    """Write ``sequences`` (id arrays) and their ``labels`` into ``directory`` as one flat split."""
    if len(sequences) != len(labels):
        raise ValueError(f"{len(sequences)} sequences but {len(labels)} labels")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in sequences], out=offsets[1:])
    tokens = np.concatenate(sequences) if len(sequences) else np.zeros(0, dtype=np.int64)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}); found {tokens.min()}..{tokens.max()}")
    np.save(directory / TOKENS_FILE, tokens.astype(token_dtype(vocab_size)))
    np.save(directory / OFFSETS_FILE, offsets)
    np.save(directory / LABELS_FILE, np.asarray(labels, dtype=np.int64))


def load_token_split(directory: str | Path) -> TokenSplit:
    """Memory-map a split written by ``save_token_split`` and check its three arrays agree."""
    directory = Path(directory)
    split = TokenSplit(
        tokens=np.load(directory / TOKENS_FILE, mmap_mode="r"),
        offsets=np.load(directory / OFFSETS_FILE, mmap_mode="r"),
        labels=np.load(directory / LABELS_FILE, mmap_mode="r"),
    )
    if len(split.offsets) != len(split.labels) + 1 or split.offsets[-1] != len(split.tokens):
        raise ValueError(
            f"corrupt token split in {directory}: {len(split.labels)} labels, {len(split.offsets)} offsets, "
            f"{len(split.tokens)} tokens; delete the folder to rebuild it"
        )
    return split


class TokenDataset(Dataset):
    """Items ``(ids: LongTensor (L,), label: int)`` read from a ``TokenSplit``."""

    def __init__(self, split: TokenSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        ids = torch.from_numpy(self.split.sequence(index).astype(np.int64))
        return ids, int(self.split.labels[index])


def collate(batch: Sequence[tuple[Tensor, int]], pad_id: int = PAD_ID) -> dict[str, Tensor]:
    """Pad a batch to its longest sequence: ``inputs`` (B, L_max), ``lengths`` (B,), ``labels`` (B,)."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    sequences = [ids for ids, _ in batch]
    return {
        "inputs": pad_sequence(sequences, batch_first=True, padding_value=pad_id),
        "lengths": torch.tensor([len(ids) for ids in sequences], dtype=torch.long),
        "labels": torch.tensor([label for _, label in batch], dtype=torch.long),
    }


def balanced_subset(
    labels: np.ndarray, n: int | None, seed: int, n_classes: int, name: str = "the split"
) -> np.ndarray:
    """Sorted indices of a seeded subset of ``n`` examples, as close to class-balanced as ``n`` allows.

    Each class gets ``n // n_classes`` examples, the first ``n % n_classes`` classes one more;
    ``n = None`` selects everything. A class with too few examples is an error naming ``name``.
    """
    labels = np.asarray(labels)
    if n is None:
        return np.arange(len(labels))
    if not 0 < n <= len(labels):
        raise ValueError(f"a subset of {n} examples of {name} needs 1 <= n <= {len(labels)} (its size)")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(n_classes):
        quota = n // n_classes + (label < n % n_classes)
        members = np.flatnonzero(labels == label)
        if len(members) < quota:
            raise ValueError(
                f"a class-balanced subset of {n} examples needs {quota} of class {label}, "
                f"but {name} holds only {len(members)}; ask for fewer examples"
            )
        chosen.append(rng.choice(members, size=quota, replace=False))
    return np.sort(np.concatenate(chosen))


def holdout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(kept, held_out)`` indices of ``n`` examples, ``fraction`` of them held out.

    Follows the S4 code base's validation split (``torch.utils.data.random_split`` with a generator
    seeded by ``seed``: a permutation whose first ``int(n * (1 - fraction))`` entries are kept), so
    seed 42 and fraction 0.1 give the same CIFAR-10 validation images as S4.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must lie strictly between 0 and 1, got {fraction}")
    n_kept = int(n * (1.0 - fraction))
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(permutation[:n_kept]), np.sort(permutation[n_kept:])
