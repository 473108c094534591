"""LightningDataModule for LRA Image: sequential grayscale CIFAR-10 (LRA, Tay et al. 2020; the S4 recipe).

The images (``lra_snn.data.image.source``: the release batches or the Hub) are split and subset,
and a batched ``map`` turns each into gray = round(0.299 R + 0.587 G + 0.114 B) (ITU-R BT.601, as
PIL's "L" mode and S4's ``Grayscale``; ``to_grayscale``), flattened row-major to 1,024 steps and
cached as uint8 (``lra_snn.data.store``). Validation: 10 % of train held out as S4 does
(``random_split`` seeded with 42): 45k / 5k / 10k. Batches have a fixed length (``lengths`` all
1,024): ``mode="values"`` gives S4's normalised floats (x - 122.6) / 61.0 (= Normalize(122.6/255,
61.0/255) on [0, 1] pixels), shape (B, 1024, 1); ``mode="tokens"`` gives LRA's 256 gray levels as
ids level + 3 (after the specials), shape (B, 1024).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lra_snn.data import store
from lra_snn.data.base import ClassificationDataModule
from lra_snn.data.collate import PIXEL_MODES, PixelCollate
from lra_snn.data.download import SOURCES as DOWNLOADS
from lra_snn.data.download import fetch_hub, fetch_source, hub_folder, saved_hub
from lra_snn.data.errors import DataNotFoundError
from lra_snn.data.image.source import (
    HUB_CONFIG,
    HUB_LAYOUT,
    HUB_PATH,
    MAKE_TARGET,
    N_CHANNELS,
    PIXELS,
    hub_dataset,
    locate_source,
    release_dataset,
)
from lra_snn.data.splits import balanced_subset, check_split_sizes, holdout_split
from lra_snn.data.tokenizers import SPECIAL_TOKENS
from lra_snn.data.views import Fixed, PixelRows, labels

if TYPE_CHECKING:
    from datasets import Dataset

SOURCES = ("release", "hub")
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma
_GRAY_WEIGHTS_PER_MILLE = (299, 587, 114)  # the same weights in integer thousandths (they sum to 1000)
CACHE_FORMAT = 3  # bump when the cached columns change meaning (2: exact integer gray levels; 3: datasets store)
COLUMNS: dict[str, store.Column] = {"gray": ("uint8", PIXELS), "label": "int8"}


def to_grayscale(images: np.ndarray) -> np.ndarray:
    """BT.601 gray levels (N, 1024) uint8 of CIFAR rows (N, 3072), rounded to the nearest level (halves up).

    Integer arithmetic (weights in thousandths), so every machine and batch size gives the same
    levels: a float dot product depends on the BLAS kernel and can round a .5 either way.
    """
    channels = images.reshape(len(images), N_CHANNELS, PIXELS).astype(np.int32)
    red, green, blue = (weight * channels[:, i] for i, weight in enumerate(_GRAY_WEIGHTS_PER_MILLE))
    return ((red + green + blue + 500) // 1000).astype(np.uint8)


def gray_batch(batch: dict[str, list]) -> dict[str, Any]:
    """``{"gray" (B, 1024) uint8, "label"}`` of a batch of release rows ``{"pixels" (3,072 bytes), "label"}``."""
    rows = np.frombuffer(b"".join(batch["pixels"]), dtype=np.uint8).reshape(len(batch["pixels"]), N_CHANNELS * PIXELS)
    return {"gray": to_grayscale(rows), "label": batch["label"]}


class ImageDataModule(ClassificationDataModule):
    """LRA Image: 10 classes, 1,024 gray levels per image, 45k / 5k / 10k.

    ``source="release"``: ``archives`` lists candidate sources (the tarball or an unpacked
    ``cifar-10-batches-py`` folder), the first that exists is read; by default
    ``<data_dir>/downloads/cifar-10-python.tar.gz``, where ``download()`` puts it. ``source="hub"``:
    the Hub dataset ``hub_path`` (config ``hub_config``), kept under ``<data_dir>/downloads/hub/``.
    ``mode``: "values" (``input_kind="values"``, d_input 1, normalised with ``pixel_mean``/``pixel_std``
    in gray levels) or "tokens" (vocabulary 259). ``val_fraction`` of train is held out with
    ``split_seed``; ``n_train``/``n_val``/``n_test`` take seeded class-balanced subsets (None: all).
    The cache holds gray levels only, so mode and normalisation change no cache.
    """

    task = "image"
    make_target = MAKE_TARGET
    n_classes = 10

    def __init__(
        self,
        *,
        data_dir: str | Path,
        source: str = "release",
        archives: Sequence[str | Path] | None = None,
        hub_path: str = HUB_PATH,
        hub_config: str = HUB_CONFIG,
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
        num_proc: int = 1,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        if mode not in PIXEL_MODES:
            raise ValueError(f"mode must be one of {PIXEL_MODES}, got {mode!r}")
        if pixel_std <= 0:
            raise ValueError(f"pixel_std must be positive, got {pixel_std}")
        self._set_loading(data_dir, batch_size, eval_batch_size, num_workers, num_proc)
        self.source = source
        default = self.downloads_dir() / DOWNLOADS["cifar10"].filename
        self.archives = [Path(a) for a in archives] if archives else [default]
        self.hub_path = hub_path
        self.hub_config = hub_config
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
        check_split_sizes(self.subset_sizes, whole=True)
        self.subset_seed = subset_seed

    def hub_snapshot(self) -> Path:
        """Where ``download()`` keeps the Hub dataset."""
        return hub_folder(self.downloads_dir(), self.hub_path, self.hub_config)

    def source_path(self) -> Path:
        """The tarball or folder to read (release), or the Hub snapshot; ``DataNotFoundError`` if absent."""
        if self.source == "release":
            return locate_source(self.archives)
        return saved_hub(self.hub_snapshot(), self.hub_path, self.hub_config, MAKE_TARGET)

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the cached gray levels depend on (the source by content)."""
        return {
            "format": CACHE_FORMAT,
            "source": {"kind": self.source, "sha256": self.digest(self.source_path())},
            "gray_weights": list(GRAY_WEIGHTS),
            "holdout": {"fraction": self.val_fraction, "seed": self.split_seed},
            "subsets": {**self.subset_sizes, "seed": self.subset_seed},
        }

    def download(self) -> Path:
        """Fetch the source (network; ``make data-image`` only) unless present; return it. Release: the
        official CIFAR-10 tarball into ``<data_dir>/downloads/``; Hub: ``hub_path`` into ``hub_snapshot()``."""
        if self.source == "hub":
            return fetch_hub(self.hub_path, self.hub_config, self.hub_snapshot(), HUB_LAYOUT)
        try:
            return locate_source(self.archives)
        except DataNotFoundError:
            return fetch_source("cifar10", self.downloads_dir())

    def build(self, staging: Path) -> tuple[Mapping[str, Dataset], dict[str, Any]]:
        """Read the images, hold out validation, take the subsets, convert to gray levels with ``map``."""
        path = self.source_path()
        raw = release_dataset(path) if self.source == "release" else hub_dataset(path, staging)
        train, test = raw["train"], raw["test"]
        kept, held_out = holdout_split(len(train), self.val_fraction, self.split_seed)
        parts = {"train": (train, kept), "val": (train, held_out), "test": (test, np.arange(len(test)))}
        splits = {}
        for split, (images, indices) in parts.items():
            subset = balanced_subset(
                store.column(images, "label")[indices],
                self.subset_sizes[split],
                self.subset_seed,
                self.n_classes,
                name=f"the {split} split",
            )
            chosen = store.select(images, indices[subset])
            splits[split] = store.map_batches(chosen, gray_batch, COLUMNS, staging, f"{split}-gray", self.num_proc)
        return splits, {}

    def _open(self, stored: store.Stored) -> None:
        self.splits = {
            split: PixelRows(Fixed.from_arrow(table.column("gray")), labels(table.column("label")))
            for split, table in stored.tables.items()
        }

    def collate(self) -> Callable[[Any], dict[str, torch.Tensor]]:
        return PixelCollate(self.mode, self.pixel_mean, self.pixel_std)
