"""The contract between a classification data module, the encoder and the task.

A data module says what its inputs are (``input_kind``: "tokens" with ``vocab_size``, or "values"
with ``d_input``; ``pair = True`` for two documents per example, as in LRA Retrieval), how many
classes it has, and counts its labels so runs can report the majority-class rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sized
from pathlib import Path
from typing import Any, Protocol, cast

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from lra_snn.data.cache import cache_dir, check_settings, is_complete
from lra_snn.data.distributed import evaluation_sampler
from lra_snn.data.errors import DataNotFoundError

INPUT_KINDS = ("tokens", "values")


class TaskData(Protocol):
    """What the encoder and the task need to know from a data module (every task's module has it)."""

    def encoder_kwargs(self) -> dict[str, int]: ...

    def task_kwargs(self) -> Mapping[str, int | bool]: ...
SPLITS = ("train", "val", "test")


class ClassificationDataModule(L.LightningDataModule):
    """Subclasses set ``task``, ``n_classes``, ``input_kind`` and ``vocab_size`` or ``d_input`` and
    ``make_target`` (the command that creates the data), call ``_set_loading`` in ``__init__``, and
    implement ``cache_settings``, ``_loader`` and ``class_counts``. The splits live in a cache folder
    keyed by every setting (``lra_snn.data.cache``): ``setup`` loads them from ``built_cache_dir``."""

    task: str
    n_classes: int
    input_kind: str
    make_target: str
    pair: bool = False
    vocab_size: int | None = None
    d_input: int | None = None

    data_dir: Path
    batch_size: int
    eval_batch_size: int
    num_workers: int
    splits: dict[str, Any]

    def _set_loading(self, data_dir: str | Path, batch_size: int, eval_batch_size: int | None,
                     num_workers: int) -> None:
        """Where the data lives and how it is batched (evaluation batches default to training's size)."""
        self.data_dir = Path(data_dir)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.splits = {}

    def downloads_dir(self) -> Path:
        return self.data_dir / "downloads"

    @property
    def cache_name(self) -> str:
        """The folder of this module's caches under ``<data_dir>/cache/``."""
        return self.task

    def cache_settings(self) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def cache_dir(self) -> Path:
        """Folder of the cached splits for the current settings."""
        return cache_dir(self.data_dir, self.cache_name, self.cache_settings())

    def built_cache_dir(self, what: str) -> Path:
        """``cache_dir()`` after checking that ``prepare_data`` built it with the current settings."""
        directory = self.cache_dir()
        if not is_complete(directory):
            raise DataNotFoundError(directory, self.make_target, detail=f"{what} not built; call prepare_data() first")
        check_settings(directory, self.cache_settings())
        return directory

    def _split(self, split: str) -> Any:
        """The loaded split ``split`` (after ``setup``)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if not self.splits:
            raise RuntimeError(f"{type(self).__name__}: call prepare_data() and setup() before reading splits")
        return self.splits[split]

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:  # pragma: no cover - interface
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def encoder_kwargs(self) -> dict[str, int]:
        """What the zoo encoder needs to know about the inputs."""
        key = {"tokens": "vocab_size", "values": "d_input"}.get(self.input_kind)
        if key is None:
            raise ValueError(f"{type(self).__name__}.input_kind must be one of {INPUT_KINDS}, got {self.input_kind!r}")
        value = getattr(self, key)
        if not isinstance(value, int):
            raise ValueError(f"{type(self).__name__}.{key} must be set for {self.input_kind} inputs, got {value!r}")
        return {key: value}

    def task_kwargs(self) -> dict[str, int | bool]:
        """What the classification task needs: the number of classes and whether inputs are pairs."""
        return {"n_classes": self.n_classes, "pair": self.pair}

    def class_counts(self, split: str) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def summary_metrics(self) -> dict[str, float]:
        """Data facts recorded beside a run's metrics: the test split's majority-class rate."""
        counts = self.class_counts("test")
        return {"test/majority_rate": float(counts.max() / counts.sum())}


class EpochSeededSampler(Sampler[int]):
    """A random permutation per epoch drawn from ``(seed, epoch)`` alone, not from the global RNG:
    a run resumed from a checkpoint at epoch k sees exactly the batches of an uninterrupted run.
    Lightning calls ``set_epoch`` before every training epoch. ``resume_after(n)`` makes the next
    pass start after the first ``n`` examples of its epoch's permutation (a run resumed from a
    mid-epoch checkpoint, ``lra_snn.training.checkpoints.ResumeMidEpoch``); ``len`` stays the whole epoch."""

    def __init__(self, n_examples: int, seed: int) -> None:
        self.n_examples = n_examples
        self.seed = seed
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_after(self, n_examples: int) -> None:
        """Leave out the first ``n_examples`` of the next pass (they were trained before the restart)."""
        if not 0 <= n_examples <= self.n_examples:
            raise ValueError(f"cannot resume after {n_examples} of {self.n_examples} examples")
        self._skip = n_examples

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        skip, self._skip = self._skip, 0
        return iter(torch.randperm(self.n_examples, generator=generator)[skip:].tolist())

    def __len__(self) -> int:
        return self.n_examples


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, collate_fn: Callable | None = None,
                num_workers: int = 0) -> DataLoader:
    """A DataLoader. Training loaders shuffle with an ``EpochSeededSampler`` seeded from the run's
    seed (``torch.initial_seed()``, set by ``seed_everything``); evaluation loaders give each DDP
    rank an unpadded shard, so every validation / test example is counted exactly once."""
    sized = cast(Sized, dataset)  # map-style datasets here all have a length
    sampler = EpochSeededSampler(len(sized), torch.initial_seed()) if shuffle else evaluation_sampler(sized)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn,
                      num_workers=num_workers, persistent_workers=num_workers > 0)
