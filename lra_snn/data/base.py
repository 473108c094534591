"""What every data module shares: a cache of its splits, the loaders, and the contract with the task.

``CachedDataModule`` keeps a task's preprocessed splits in a cache folder keyed by every setting
and by the content of its source files (``lra_snn.data.store``): ``prepare_data`` builds it once
(``build``), ``setup`` memory-maps it and makes the loaders' datasets (``_open``). A classification
module (``ClassificationDataModule``) also says what its inputs are (``input_kind``: "tokens" with
``vocab_size``, or "values" with ``d_input``; ``pair = True`` for two documents per example, as in
LRA Retrieval), how many classes it has, and counts its labels so runs can report the
majority-class rate.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from lra_snn.data import store
from lra_snn.data.distributed import evaluation_sampler
from lra_snn.data.errors import DamagedCacheError
from lra_snn.data.splits import SPLITS
from lra_snn.data.views import PairRows, PixelRows, TokenRows

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

INPUT_KINDS = ("tokens", "values")
FEW_EXAMPLES = 10  # an evaluation split this small may hold a single class by chance: not warned about


class TaskData(Protocol):
    """What the encoder and the task need to know from a data module (every task's module has it)."""

    def encoder_kwargs(self) -> dict[str, int]: ...

    def task_kwargs(self) -> Mapping[str, int | bool]: ...


class CachedDataModule(L.LightningDataModule):
    """A data module whose splits live in ``<data_dir>/cache/<cache_name>/<hash of cache_settings()>/``.

    Subclasses set ``task`` and ``make_target`` (the command that creates the data), call
    ``_set_storage`` in ``__init__`` and implement ``cache_settings`` (every setting the cache depends
    on, source files by ``digest``), ``build`` (the splits as ``datasets.Dataset``s, see
    ``lra_snn.data.store.ensure``), ``_open`` (the loaders' datasets from the stored tables) and
    ``_loader``; ``_learn`` takes what a build recorded (e.g. a vocabulary) on every open.
    """

    task: str
    make_target: str
    val_split = "val"

    data_dir: Path
    num_workers: int
    num_proc: int

    def _set_storage(self, data_dir: str | Path, num_workers: int, num_proc: int) -> None:
        """Where the data lives, the DataLoader workers and the processes preprocessing uses."""
        if num_workers < 0 or num_proc < 1:
            raise ValueError(f"need num_workers >= 0 and num_proc >= 1, got {num_workers} and {num_proc}")
        self.data_dir = Path(data_dir)
        self.num_workers = num_workers
        self.num_proc = num_proc
        self.sources_read: dict[str, tuple[str, str]] = {}  # path -> (content digest, stat signature)

    def downloads_dir(self) -> Path:
        return self.data_dir / "downloads"

    @property
    def cache_name(self) -> str:
        """The folder of this module's caches under ``<data_dir>/cache/``."""
        return self.task

    def digest(self, path: str | Path) -> str:
        """Content digest (sha256) of a source file or folder, memoised under ``<data_dir>/cache/``; kept
        in ``sources_read`` with the identities of its files (``data_identity``)."""
        digest, signature = store.digest_and_signature(path, self.data_dir)
        self.sources_read[str(Path(path).resolve())] = (digest, signature)
        return digest

    def data_identity(self) -> dict[str, Any]:
        """What a run's result records of the files it read (after ``cache_settings``, which digests them):
        ``digest``, the SHA-256 of each file's or folder's name with its content digest, in order (the same
        on every machine, and changed when two files trade contents, e.g. a validation and a test split;
        generated data reads none); ``sources``, each file or folder read and the identities of its files
        (``store.stat_signature``), so a later sweep sees a changed source without reading it."""
        self.cache_settings()
        contents = sorted([Path(path).name, digest] for path, (digest, _) in self.sources_read.items())
        return {
            "digest": hashlib.sha256(json.dumps(contents).encode()).hexdigest(),
            "sources": {path: signature for path, (_, signature) in sorted(self.sources_read.items())},
        }

    def cache_settings(self) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def cache_dir(self) -> Path:
        """Folder of the cached splits for the current settings."""
        return store.cache_dir(self.data_dir, self.cache_name, self.cache_settings())

    def build(self, staging: Path) -> tuple[Mapping[str, datasets.Dataset], dict[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Build the cache unless it opens (a damaged one is rebuilt, with a warning naming it)."""
        self._learn(store.ensure(self.cache_dir(), self.cache_settings(), self.build))

    def setup(self, stage: str | None = None) -> None:
        """Memory-map the splits cached by ``prepare_data``."""
        stored = store.load(self.cache_dir(), self.cache_settings(), self.make_target)
        self._learn(stored.extra)
        self._open(stored)
        self._check_stored(stored)

    def _check_stored(self, stored: store.Stored) -> None:
        """Refuse a cache holding values the model cannot take (``DamagedCacheError`` naming it)."""
        self._check_token_ids(stored)

    def _check_token_ids(self, stored: store.Stored) -> None:
        """``DamagedCacheError`` naming the cache when a token column (``ids...``) holds an id outside the
        vocabulary (``vocab_size``, for modules of token inputs): a model would index out of its embedding."""
        vocab_size = getattr(self, "vocab_size", None)
        if not isinstance(vocab_size, int):
            return
        for split, table in stored.tables.items():
            for name in (name for name in table.column_names if name.startswith("ids")):
                outside = store.ids_outside(table.column(name), vocab_size)
                if outside is not None:
                    raise DamagedCacheError(
                        stored.directory,
                        f"split {split!r}, column {name!r} holds token id {outside}, outside the vocabulary of "
                        f"{vocab_size} ids",
                    )

    def _learn(self, extra: dict[str, Any]) -> None:
        """Take what the build recorded (nothing by default)."""

    def _open(self, stored: store.Stored) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _loader(self, split: str, training: bool) -> DataLoader:  # pragma: no cover - interface
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", training=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_split, training=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", training=False)


Examples = TokenRows | PairRows | PixelRows


class ClassificationDataModule(CachedDataModule):
    """Subclasses also set ``n_classes``, ``input_kind`` and ``vocab_size`` or ``d_input``, call
    ``_set_loading`` in ``__init__``, fill ``splits`` in ``_open`` and implement ``collate``. Batches
    are ``{"inputs", "lengths", "labels"}``; training batches come in an order fixed by (seed, epoch)."""

    n_classes: int
    input_kind: str
    pair: bool = False
    vocab_size: int | None = None
    d_input: int | None = None

    batch_size: int
    eval_batch_size: int
    splits: dict[str, Examples]

    def _set_loading(
        self, data_dir: str | Path, batch_size: int, eval_batch_size: int | None, num_workers: int, num_proc: int
    ) -> None:
        """Storage, and batching (evaluation batches default to training's size)."""
        self._set_storage(data_dir, num_workers, num_proc)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.splits = {}

    def split(self, name: str) -> Examples:
        """The examples of split ``name`` (after ``setup``)."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        if not self.splits:
            raise RuntimeError(f"{type(self).__name__}: call prepare_data() and setup() before reading splits")
        return self.splits[name]

    def collate(self) -> Callable[[Any], dict[str, torch.Tensor]]:  # pragma: no cover - interface
        raise NotImplementedError

    def _loader(self, split: str, training: bool) -> DataLoader:
        batch_size = self.batch_size if training else self.eval_batch_size
        return make_loader(self.split(split), batch_size, training, self.collate(), self.num_workers)

    def _check_stored(self, stored: store.Stored) -> None:
        """Also refuse labels outside the classes, and warn of an evaluation split that holds a single class."""
        super()._check_stored(stored)
        self._check_labels(stored.directory)
        self._warn_single_class(stored.directory)

    def _check_labels(self, directory: Path) -> None:
        """``DamagedCacheError`` naming the cache ``directory`` when a split holds a label outside
        ``0..n_classes - 1``: the loss would index past its classes mid-training."""
        for split, examples in self.splits.items():
            outside = label_outside(examples.labels, self.n_classes)
            if outside is not None:
                raise DamagedCacheError(
                    directory,
                    f"split {split!r} holds label {outside}, outside the {self.n_classes} classes "
                    f"0-{self.n_classes - 1} of {self.task}",
                )

    def _warn_single_class(self, directory: Path) -> None:
        """Log a warning naming the split and the cache ``directory`` when the validation or test split holds
        more than ``FEW_EXAMPLES`` examples, all of one class: accuracy on it measures nothing."""
        for split in dict.fromkeys((self.val_split, "test")):
            found = np.unique(self.splits[split].labels)
            if len(self.splits[split]) > FEW_EXAMPLES and len(found) == 1:
                log.warning(
                    "split %r of cache %s holds a single class (%d): its %d examples all carry that label, so "
                    "accuracy on it says nothing about the model; check the source of that split",
                    split,
                    directory,
                    found[0],
                    len(self.splits[split]),
                )

    def class_counts(self, split: str) -> np.ndarray:
        """Examples per class (length ``n_classes``) in ``split``."""
        return np.bincount(self.split(split).labels, minlength=self.n_classes)

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

    def summary_metrics(self) -> dict[str, float]:
        """Data facts recorded beside a run's metrics: the test split's majority-class rate and the
        chance rate 1 / n_classes (what guessing uniformly scores; the figures draw both)."""
        counts = self.class_counts("test")
        return {"test/majority_rate": float(counts.max() / counts.sum()), "test/chance_rate": 1.0 / len(counts)}


def label_outside(labels: np.ndarray, n_classes: int) -> int | None:
    """The first of ``labels`` outside ``0..n_classes - 1``, or None when all lie inside."""
    outside = labels[(labels < 0) | (labels >= n_classes)]
    return int(outside[0]) if outside.size else None


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
        # reduced below 2**63: an unseeded process's torch.initial_seed() takes all 64 bits
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % (1 << 63))
        skip, self._skip = self._skip, 0
        return iter(torch.randperm(self.n_examples, generator=generator)[skip:].tolist())

    def __len__(self) -> int:
        return self.n_examples


def make_loader(
    dataset: Dataset, batch_size: int, shuffle: bool, collate_fn: Callable | None = None, num_workers: int = 0
) -> DataLoader:
    """A DataLoader. Training loaders shuffle with an ``EpochSeededSampler`` seeded from the run's
    seed (``torch.initial_seed()``, set by ``seed_everything``); evaluation loaders give each DDP
    rank an unpadded shard, so every validation / test example is counted exactly once."""
    sized = cast(Sized, dataset)  # map-style datasets here all have a length
    sampler = EpochSeededSampler(len(sized), torch.initial_seed()) if shuffle else evaluation_sampler(sized)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
