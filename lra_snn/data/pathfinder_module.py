"""LightningDataModule for LRA Pathfinder (32 px, L = 1,024) and Path-X (128 px, L = 16,384): generated or
released images, decoded once into a uint8 cache (Tay et al. 2020; data.md "Pathfinder").

``prepare_data`` writes generated images in the release layout (``lra_snn.data.pathfinder``) under
``<data_dir>/pathfinder/generated/<hash of generator settings>/pathfinder<res>/<difficulty>/`` when
absent, then reads that folder, or an unpacked LRA release, with the same reader
(``lra_snn.data.pathfinder_reader``), splits the images 80/10/10 with a seeded permutation and
writes ``<split>/images.npy`` (uint8, N x res x res), ``<split>/labels.npy`` and ``skipped.txt``
(the empty or undecodable images left out) into ``<data_dir>/cache/pathfinder/<hash>/``.
``setup`` only memory-maps that cache. Batches: ``inputs`` (B, L, 1) float pixels / 255
(``mode="values"``) or (B, L) token ids pixel + 3 (``mode="tokens"``: 256 levels after the
shared specials), ``lengths`` all L, ``labels`` 0/1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lra_snn.data import pathfinder, pathfinder_reader
from lra_snn.data.base import ClassificationDataModule, make_loader
from lra_snn.data.cache import ensure_built, is_complete, settings_hash
from lra_snn.data.errors import DataNotFoundError
from lra_snn.data.pathfinder_reader import ImageRecord
from lra_snn.data.tokens import SPECIAL_TOKENS

SOURCES = ("generate", "release")
MODES = ("values", "tokens")
SPLITS = ("train", "val", "test")
STORAGE = "pathfinder"  # folder name under data_dir/ and data_dir/cache/ for both resolutions
TASK_NAMES = {32: "pathfinder", 128: "pathx"}
CACHE_FORMAT = 1  # bump when the cached arrays change meaning
TOKEN_OFFSET = len(SPECIAL_TOKENS)  # token id = pixel value + 3
N_LEVELS = 256
IMAGES_FILE, LABELS_FILE, SKIPPED_FILE = "images.npy", "labels.npy", "skipped.txt"


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Train / val / test sizes of ``n`` images (val and test rounded, train the rest); each at least 1."""
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    sizes = (n - n_val - n_test, n_val, n_test)
    if min(sizes) < 1:
        raise ValueError(f"{n} images split {val_fraction:g}/{test_fraction:g} leave an empty split {sizes}; "
                         f"use more images or larger fractions")
    return sizes


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Record indices of each split: consecutive parts of one seeded permutation of ``range(n)``."""
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum((0, *split_sizes(n, val_fraction, test_fraction)))
    return {split: order[bounds[i]:bounds[i + 1]] for i, split in enumerate(SPLITS)}


def write_split(target: Path, records: Sequence[ImageRecord], resolution: int) -> list[Path]:
    """Decode ``records`` into ``target/images.npy`` and ``labels.npy``; returns the images skipped.

    Images are written one at a time into a memory map, so a split never has to fit in memory.
    """
    target.mkdir(parents=True)
    filling = target / ("filling-" + IMAGES_FILE)
    images = open_memmap(filling, mode="w+", dtype=np.uint8, shape=(len(records), resolution, resolution))
    labels: list[int] = []
    skipped: list[Path] = []
    for record in records:
        pixels = pathfinder_reader.load_image(record, resolution)
        if pixels is None:
            skipped.append(record.image)
            continue
        images[len(labels)] = pixels
        labels.append(record.label)
    images.flush()
    if not labels:
        raise ValueError(f"all {len(records)} images of the {target.name} split are empty or undecodable "
                         f"(first: {skipped[0]}); the image files are damaged: unpack or generate them again")
    if skipped:  # keep only the rows written
        np.save(target / IMAGES_FILE, images[: len(labels)])
        del images
        filling.unlink()
    else:
        del images
        os.replace(filling, target / IMAGES_FILE)
    np.save(target / LABELS_FILE, np.asarray(labels, dtype=np.int64))
    return skipped


class PixelDataset(Dataset):
    """Images of one split, flattened row-major: item ``(pixels uint8 (L,), label)``; a batch of
    indices is read from the memory map in one indexing operation (``__getitems__``)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.images[index].reshape(-1), int(self.labels[index])

    def __getitems__(self, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(indices, dtype=np.int64)
        return self.images[rows].reshape(len(rows), -1), np.asarray(self.labels[rows])


def pixel_batch(batch: tuple[np.ndarray, np.ndarray], mode: str) -> dict[str, Tensor]:
    """``{"inputs", "lengths", "labels"}`` from ``(pixels uint8 (B, L), labels (B,))``."""
    pixels, labels = batch
    if mode == "values":  # converted by numpy: as fast as torch, and free of torch's thread pool
        inputs = torch.from_numpy(pixels.astype(np.float32) / np.float32(N_LEVELS - 1)).unsqueeze(-1)
    else:
        inputs = torch.from_numpy(pixels.astype(np.int64) + TOKEN_OFFSET)
    length = pixels.shape[1]
    return {"inputs": inputs, "lengths": torch.full((len(labels),), length, dtype=torch.long),
            "labels": torch.from_numpy(labels.astype(np.int64))}


class _PixelCollate:
    """Picklable collate function (DataLoader workers) applying ``pixel_batch`` in one mode."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, batch: tuple[np.ndarray, np.ndarray]) -> dict[str, Tensor]:
        return pixel_batch(batch, self.mode)


class PathfinderDataModule(ClassificationDataModule):
    """Pathfinder (``resolution=32``) or Path-X (``resolution=128``): 2 classes, L = resolution ** 2.

    ``source="generate"`` draws ``n_images`` with the LRA generator at this resolution (settings
    ``SnakeParams.lra(resolution)``, any of them overridden by ``generator``; the contour length
    comes from ``difficulty``), written in batches of ``images_per_batch`` seeded by
    ``(generator_seed, batch)``, by ``max(num_workers, 1)`` processes. ``source="release"`` reads
    ``release_dir`` (the ``pathfinder<res>`` folder, or a folder above it in the release's nesting);
    ``difficulty=None`` pools every difficulty folder present. The images are split
    ``1 - val_fraction - test_fraction`` / ``val_fraction`` / ``test_fraction`` by a permutation
    seeded with ``split_seed``; ``skipped_images`` counts the empty or undecodable ones left out.
    """

    n_classes = 2

    def __init__(
        self,
        *,
        data_dir: str | Path,
        source: str = "generate",
        release_dir: str | Path | None = None,
        resolution: int = 32,
        difficulty: str | None = pathfinder.LRA_DIFFICULTY,
        n_images: int = 200_000,
        images_per_batch: int = 1000,
        generator_seed: int = 0,
        generator: Mapping[str, Any] | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        mode: str = "values",
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if source == "release" and release_dir is None:
            raise ValueError(f"source='release' needs release_dir (the pathfinder{resolution} folder of the LRA "
                             f"release)")
        if source == "generate" and difficulty not in pathfinder.DIFFICULTIES:
            raise ValueError(f"source='generate' needs difficulty in {sorted(pathfinder.DIFFICULTIES)} "
                             f"(it sets the contour length), got {difficulty!r}")
        self._set_loading(data_dir, batch_size, eval_batch_size, num_workers)
        self.source = source
        self.release_dir = None if release_dir is None else Path(release_dir)
        self.resolution = resolution
        self.difficulty = difficulty
        self.task = TASK_NAMES.get(resolution, f"pathfinder{resolution}")
        self.make_target = f"make data-{self.task}"
        self.mode = mode
        self.input_kind = mode
        self.vocab_size = N_LEVELS + TOKEN_OFFSET if mode == "tokens" else None
        self.d_input = 1 if mode == "values" else None
        self.split_settings: dict[str, Any] = {"val_fraction": val_fraction, "test_fraction": test_fraction, "seed": split_seed}
        if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
            raise ValueError(f"need val_fraction > 0, test_fraction > 0 and their sum below 1, got "
                             f"{val_fraction}, {test_fraction}")
        self.generator_settings: dict[str, Any] | None = None
        self.params: pathfinder.SnakeParams | None = None
        if source == "generate":
            split_sizes(n_images, val_fraction, test_fraction)
            self.params = self._snake_params(generator or {})
            self.generator_settings = {"params": self.params.as_dict(), "n_images": n_images,
                                       "images_per_batch": images_per_batch, "seed": generator_seed,
                                       "generator_version": pathfinder.GENERATOR_VERSION}
        self.skipped_images: int | None = None

    def _snake_params(self, overrides: Mapping[str, Any]) -> pathfinder.SnakeParams:
        """LRA's generator settings at this resolution with ``overrides``; the difficulty sets the contour length."""
        overrides = dict(overrides)
        assert self.difficulty is not None  # checked in __init__ for generated data
        contour_length = pathfinder.DIFFICULTIES[self.difficulty]
        if overrides.setdefault("contour_length", contour_length) != contour_length:
            raise ValueError(f"generator.contour_length={overrides['contour_length']} contradicts "
                             f"difficulty={self.difficulty!r} ({contour_length} paddles); set only the difficulty")
        if "margins" in overrides:
            overrides["margins"] = tuple(overrides["margins"])
        return pathfinder.SnakeParams.lra(self.resolution, **overrides)

    # ------------------------------------------------------------------ locations and settings

    def generated_dir(self) -> Path:
        """Folder of the generated release's build (holds ``pathfinder<res>/`` and ``meta.json``)."""
        return self.data_dir / STORAGE / "generated" / settings_hash(self._generator_settings())

    def release_folder(self) -> Path:
        """The folder holding the difficulty folders (generated ones must exist already)."""
        if self.source == "release":
            return pathfinder_reader.locate_release(self.release_dir, self.resolution)
        folder = self.generated_dir() / f"pathfinder{self.resolution}"
        if not is_complete(self.generated_dir()):
            raise DataNotFoundError(folder, f"make data-{self.task}", detail="generated Pathfinder images are missing")
        return folder

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the decoded cache depends on (not ``mode``: one cache serves values and tokens)."""
        settings: dict[str, Any] = {"format": CACHE_FORMAT, "source": self.source, "resolution": self.resolution,
                                    "difficulty": self.difficulty, "split": self.split_settings}
        if self.source == "generate":
            settings["generator"] = self.generator_settings
        else:
            folder = self.release_folder()
            settings["release"] = {
                "folder": str(folder.resolve()),
                "metadata_bytes": {str(path.relative_to(folder)): path.stat().st_size
                                   for directory in pathfinder_reader.difficulty_dirs(folder, self.difficulty)
                                   for path in pathfinder_reader.metadata_files(directory)},
            }
        return settings

    cache_name = STORAGE  # both resolutions share one folder; the settings tell them apart

    # ------------------------------------------------------------------ Lightning hooks

    def prepare_data(self) -> None:
        """Generate the images if needed, then decode them into the cache unless it is complete."""
        if self.source == "generate":
            ensure_built(self.generated_dir(), self._generator_settings(), self._write_generated)
        folder = self.release_folder()
        directory = ensure_built(self.cache_dir(), self.cache_settings(),
                                 lambda target: self._write_cache(folder, target))
        self.skipped_images = len(_read_skipped(directory))

    def setup(self, stage: str | None = None) -> None:
        """Memory-map the three decoded splits from the cache (built by ``prepare_data``)."""
        directory = self.built_cache_dir("decoded cache")
        self.splits = {split: (np.load(directory / split / IMAGES_FILE, mmap_mode="r"),
                               np.load(directory / split / LABELS_FILE, mmap_mode="r")) for split in SPLITS}
        self.skipped_images = len(_read_skipped(directory))

    def class_counts(self, split: str) -> np.ndarray:
        """Examples per class (length 2) in ``split``."""
        return np.bincount(self._split(split)[1], minlength=self.n_classes)

    def dataset(self, split: str) -> PixelDataset:
        """The images and labels of ``split`` (after ``setup``)."""
        return PixelDataset(*self._split(split))

    # ------------------------------------------------------------------ helpers

    def _generator_settings(self) -> dict[str, Any]:
        if self.generator_settings is None:
            raise ValueError(f"{self.task}: generator settings exist only for source='generate', not {self.source!r}")
        return self.generator_settings

    def _write_generated(self, target: Path) -> None:
        settings = self._generator_settings()
        assert self.params is not None  # set with the generator settings
        pathfinder.write_release(target, self.params, settings["n_images"], seed=settings["seed"],
                                 images_per_batch=settings["images_per_batch"], workers=max(self.num_workers, 1))

    def _write_cache(self, folder: Path, target: Path) -> None:
        records = pathfinder_reader.read_records(folder, self.difficulty)
        skipped: list[Path] = []
        for split, indices in split_indices(len(records), **self.split_settings).items():
            skipped += write_split(target / split, [records[i] for i in indices], self.resolution)
        (target / SKIPPED_FILE).write_text("".join(f"{path}\n" for path in skipped), encoding="utf-8")
        pathfinder_reader.warn_skipped(skipped)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        return make_loader(self.dataset(split), batch_size, shuffle, _PixelCollate(self.mode), self.num_workers)


def _read_skipped(directory: Path) -> list[str]:
    return (directory / SKIPPED_FILE).read_text(encoding="utf-8").splitlines()
