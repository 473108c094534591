"""LRA Image, sequential grayscale CIFAR-10 (Krizhevsky 2009; LRA, Tay et al. 2020; S4 recipe).

Source: the official python batches ``cifar-10-batches-py/data_batch_{1..5}`` and ``test_batch``
(pickled dicts, ``b"data"`` (N, 3072) uint8 as 1,024 red, 1,024 green, 1,024 blue values, each
channel row-major, and ``b"labels"``), read from ``cifar-10-python.tar.gz`` without extracting it or
from an unpacked folder. The pickles are loaded with an unpickler that admits numpy arrays only.
Each image becomes gray = round(0.299 R + 0.587 G + 0.114 B) (ITU-R BT.601, as PIL's "L" mode and
S4's ``Grayscale``), flattened row-major to 1,024 steps and cached as uint8 (data.md "CIFAR-10").
Validation: 10 % of train held out as S4 does (``random_split`` seeded with 42): 45k / 5k / 10k.
Batches have a fixed length (``lengths`` all 1,024): ``mode="values"`` gives S4's normalised
floats (x - 122.6) / 61.0 (= Normalize(122.6/255, 61.0/255) on [0, 1] pixels), shape (B, 1024, 1);
``mode="tokens"`` gives LRA's 256 gray levels as ids level + 3 (after the specials), shape (B, 1024).
"""

from __future__ import annotations

import functools
import io
import logging
import pickle
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lra_snn.data.base import ClassificationDataModule, make_loader
from lra_snn.data.cache import ensure_built
from lra_snn.data.download import SOURCES, fetch_source, iter_archive_files, reading_archive
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.tokens import SPECIAL_TOKENS, balanced_subset, holdout_split

log = logging.getLogger(__name__)

BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
SIDE = 32
PIXELS = SIDE * SIDE
N_CHANNELS = 3
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma
_GRAY_WEIGHTS_PER_MILLE = (299, 587, 114)  # the same weights in integer thousandths (they sum to 1000)
MODES = ("values", "tokens")
SPLITS = ("train", "val", "test")
MAKE_TARGET = "make data-image"
CACHE_FORMAT = 2  # bump when the cached arrays change meaning (2: exact integer gray levels)
IMAGES_FILE = "images.npy"
LABELS_FILE = "labels.npy"

# Globals a CIFAR-10 pickle may name: numpy's array reconstruction (numpy 1 and 2 module names) and
# the bytes constructor that protocol-2 pickles written by Python 3 use.
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}

# --------------------------------------------------------------------------- reading CIFAR-10


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays")
        return super().find_class(module, name)


def load_batch(data: bytes, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 3072) uint8, labels (N,) int64)`` of one pickled batch; ``path`` names it in errors.

    Format errors name the file and, for a bad label, the 1-based record (line 1: the file as a whole).
    """
    try:
        batch = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataFormatError(path, 1, f"not a CIFAR-10 python batch ({error})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataFormatError(path, 1, 'not a CIFAR-10 python batch (expected a dict with b"data" and b"labels")')
    images = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != N_CHANNELS * PIXELS:
        raise DataFormatError(path, 1, f'b"data" must be uint8 of shape (N, {N_CHANNELS * PIXELS}), got {images.dtype} {images.shape}')
    if labels.shape != (len(images),):
        raise DataFormatError(path, 1, f'{len(images)} images but b"labels" has shape {labels.shape}')
    outside = np.flatnonzero((labels < 0) | (labels > 9))
    if outside.size:
        raise DataFormatError(path, int(outside[0]) + 1, f"label {labels[outside[0]]} is outside 0-9")
    return images, labels.astype(np.int64)


def to_grayscale(images: np.ndarray) -> np.ndarray:
    """BT.601 gray levels (N, 1024) uint8 of CIFAR rows (N, 3072), rounded to the nearest level (halves up).

    Integer arithmetic (weights in thousandths), so every machine and batch size gives the same
    levels: a float dot product depends on the BLAS kernel and can round a .5 either way.
    """
    channels = images.reshape(len(images), N_CHANNELS, PIXELS).astype(np.int32)
    red, green, blue = (weight * channels[:, i] for i, weight in enumerate(_GRAY_WEIGHTS_PER_MILLE))
    return ((red + green + blue + 500) // 1000).astype(np.uint8)


def locate_source(candidates: Sequence[str | Path]) -> Path:
    """The first candidate (the tarball or an unpacked folder) that exists; else ``DataNotFoundError``."""
    paths = [Path(candidate) for candidate in candidates]
    if not paths:
        raise ValueError("archives must list at least one candidate path (a CIFAR-10 tarball or folder)")
    for path in paths:
        if path.exists():
            return path
    raise DataNotFoundError(paths[0], MAKE_TARGET, detail="looked for " + ", ".join(str(path) for path in paths))


def read_cifar(source: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (gray (50000, 1024) uint8, labels), "test": ...}`` from the tarball or a folder."""
    source = Path(source)
    batches = dict(_iter_batch_files(source))
    missing = [name for name in TRAIN_BATCHES + TEST_BATCHES if name not in batches]
    if missing:
        raise DataNotFoundError(source, MAKE_TARGET, detail=f"it lacks {BATCH_FOLDER}/{{{','.join(missing)}}}")
    result = {}
    for split, names in (("train", TRAIN_BATCHES), ("test", TEST_BATCHES)):
        loaded = [load_batch(batches[name], source / BATCH_FOLDER / name) for name in names]
        result[split] = (to_grayscale(np.concatenate([i for i, _ in loaded])), np.concatenate([l for _, l in loaded]))
    return result


def _is_batch_file(name: str) -> bool:
    folder, _, filename = name.rpartition("/")
    return filename in TRAIN_BATCHES + TEST_BATCHES and folder.rpartition("/")[2] == BATCH_FOLDER


def _iter_batch_files(source: Path) -> Iterator[tuple[str, bytes]]:
    """``(batch name, pickled bytes)`` of every batch file in the tarball or folder."""
    if source.is_dir():
        folder = source / BATCH_FOLDER if (source / BATCH_FOLDER).is_dir() else source
        for name in TRAIN_BATCHES + TEST_BATCHES:
            if (folder / name).is_file():
                yield name, (folder / name).read_bytes()
        return
    with reading_archive(source):
        for member, stream in iter_archive_files(source, members=_is_batch_file):
            yield member.rpartition("/")[2], stream.read()


# --------------------------------------------------------------------------- batches


class ImageDataset(Dataset):
    """Items ``(gray levels uint8 (1024,), label)`` of one cached split."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return torch.from_numpy(np.array(self.images[index])), int(self.labels[index])


def collate_images(batch: Sequence[tuple[Tensor, int]], *, mode: str, mean: float, std: float) -> dict[str, Tensor]:
    """Stack a batch: ``inputs`` (B, 1024, 1) normalised floats or (B, 1024) token ids, ``lengths`` all 1024."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    levels = torch.stack([pixels for pixels, _ in batch])
    if mode == "values":
        inputs = ((levels.float() - mean) / std).unsqueeze(-1)
    else:
        inputs = levels.long() + len(SPECIAL_TOKENS)
    return {
        "inputs": inputs,
        "lengths": torch.full((len(batch),), levels.shape[1], dtype=torch.long),
        "labels": torch.tensor([label for _, label in batch], dtype=torch.long),
    }


# --------------------------------------------------------------------------- data module


class ImageDataModule(ClassificationDataModule):
    """LRA Image: 10 classes, 1,024 gray levels per image, 45k / 5k / 10k.

    ``archives`` lists candidate sources (the tarball or an unpacked ``cifar-10-batches-py``
    folder), the first that exists is read; by default ``<data_dir>/downloads/cifar-10-python.tar.gz``,
    where ``download()`` puts it. ``mode``: "values" (``input_kind="values"``, d_input 1, normalised
    with ``pixel_mean``/``pixel_std`` in gray levels) or "tokens" (vocabulary 259). ``val_fraction``
    of train is held out with ``split_seed``; ``n_train``/``n_val``/``n_test`` take seeded
    class-balanced subsets (None: all). The cache holds gray levels only, so mode and normalisation
    change no cache. Training batches are shuffled in an order fixed by (seed, epoch).
    """

    task = "image"
    make_target = MAKE_TARGET
    n_classes = 10

    def __init__(
        self,
        *,
        data_dir: str | Path,
        archives: Sequence[str | Path] | None = None,
        mode: str = "values",
        pixel_mean: float = 122.6,
        pixel_std: float = 61.0,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        n_train: int | None = None,
        n_val: int | None = None,
        n_test: int | None = None,
        subset_seed: int = 0,
        batch_size: int = 50,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if pixel_std <= 0:
            raise ValueError(f"pixel_std must be positive, got {pixel_std}")
        self._set_loading(data_dir, batch_size, eval_batch_size, num_workers)
        self.archives = [Path(a) for a in archives] if archives else [self.downloads_dir() / SOURCES["cifar10"].filename]
        self.mode = mode
        self.input_kind = mode
        if mode == "values":
            self.d_input = 1
        else:
            self.vocab_size = len(SPECIAL_TOKENS) + 256
        self.pixel_mean = pixel_mean
        self.pixel_std = pixel_std
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.subset_sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.subset_seed = subset_seed

    # ------------------------------------------------------------------ locations and settings

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the cached gray levels depend on (the source included)."""
        source = locate_source(self.archives)
        return {
            "format": CACHE_FORMAT,
            "source": {"path": str(source.resolve()), "bytes": source.stat().st_size if source.is_file() else None},
            "gray_weights": list(GRAY_WEIGHTS),
            "holdout": {"fraction": self.val_fraction, "seed": self.split_seed},
            "subsets": {**self.subset_sizes, "seed": self.subset_seed},
        }

    # ------------------------------------------------------------------ Lightning hooks

    def download(self) -> Path:
        """Fetch the official CIFAR-10 tarball into ``<data_dir>/downloads/`` (network; ``make data-image``
        only) unless one of ``archives`` exists already; return the source to read."""
        try:
            return locate_source(self.archives)
        except DataNotFoundError:
            return fetch_source("cifar10", self.downloads_dir())

    def prepare_data(self) -> None:
        """Convert the batches to cached gray levels unless the cache is complete."""
        ensure_built(self.cache_dir(), self.cache_settings(), self._write_cache)

    def setup(self, stage: str | None = None) -> None:
        """Memory-map the cached splits (built by ``prepare_data``)."""
        directory = self.built_cache_dir("image cache")
        self.splits = {split: _load_images(directory / split) for split in SPLITS}

    def class_counts(self, split: str) -> np.ndarray:
        """Images per class in ``split``."""
        return np.bincount(self._split(split)[1], minlength=self.n_classes)

    # ------------------------------------------------------------------ helpers

    def _write_cache(self, target: Path) -> None:
        started = time.perf_counter()
        source = locate_source(self.archives)
        data = read_cifar(source)
        train_images, train_labels = data["train"]
        kept, held_out = holdout_split(len(train_labels), self.val_fraction, self.split_seed)
        parts = {"train": (train_images, train_labels, kept), "val": (train_images, train_labels, held_out),
                 "test": (*data["test"], np.arange(len(data["test"][1])))}
        for split, (images, labels, indices) in parts.items():
            chosen = indices[balanced_subset(labels[indices], self.subset_sizes[split], self.subset_seed,
                                               self.n_classes, name=f"the {split} split")]
            _save_images(target / split, images[chosen], labels[chosen])
        log.info("image: converted %s in %.1f s", source, time.perf_counter() - started)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        return make_loader(ImageDataset(*self._split(split)), batch_size, shuffle,
                           functools.partial(collate_images, mode=self.mode, mean=self.pixel_mean, std=self.pixel_std), self.num_workers)


def _save_images(directory: Path, images: np.ndarray, labels: np.ndarray) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / IMAGES_FILE, np.ascontiguousarray(images, dtype=np.uint8))
    np.save(directory / LABELS_FILE, labels.astype(np.int64))


def _load_images(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    images = np.load(directory / IMAGES_FILE, mmap_mode="r")
    labels = np.load(directory / LABELS_FILE, mmap_mode="r")
    if images.ndim != 2 or images.shape != (len(labels), PIXELS):
        raise ValueError(
            f"corrupt image cache in {directory}: images {images.shape}, {len(labels)} labels; delete the folder to rebuild it"
        )
    return images, labels
