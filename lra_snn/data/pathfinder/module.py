"""LightningDataModule for LRA Pathfinder (32 px, L = 1,024) and Path-X (128 px, L = 16,384): generated or
released images, decoded once into a uint8 cache (Tay et al. 2020).

``prepare_data`` builds the cache (``lra_snn.data.store``): every image (``lra_snn.data.pathfinder.source``)
is assigned to train / val / test by a seeded permutation, the empty or undecodable ones are left
out (and named in the cache's record, ``skipped_images`` counts them), and a batched ``map`` stores
each split's ``pixels`` (uint8, L per image, row-major) and ``label`` (int8). ``setup`` memory-maps
it. Batches: ``inputs`` (B, L, 1) float pixels / 255 (``mode="values"``) or (B, L) token ids
pixel + 3 (``mode="tokens"``: 256 levels after the shared specials), ``lengths`` all L, ``labels`` 0/1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lra_snn.data import store
from lra_snn.data.base import ClassificationDataModule
from lra_snn.data.collate import PIXEL_MODES, PixelCollate
from lra_snn.data.errors import DataNotFoundError
from lra_snn.data.lra_release import fetch_release
from lra_snn.data.pathfinder.generate import DIFFICULTIES, GENERATOR_VERSION, LRA_DIFFICULTY, SnakeParams
from lra_snn.data.pathfinder.source import (
    difficulty_dirs,
    generated_dataset,
    locate_release,
    release_dataset,
    warn_skipped,
)
from lra_snn.data.splits import partition, partition_sizes
from lra_snn.data.tokenizers import SPECIAL_TOKENS
from lra_snn.data.views import Fixed, PixelRows, labels

if TYPE_CHECKING:
    from datasets import Dataset

SOURCES = ("generate", "release")
STORAGE = "pathfinder"  # folder name under data_dir/cache/ for both resolutions
TASK_NAMES = {32: "pathfinder", 128: "pathx"}
CACHE_FORMAT = 2  # bump when the cached columns change meaning (2: datasets store)
N_LEVELS = 256


def pixel_batch(batch: dict[str, list], *, length: int) -> dict[str, Any]:
    """``{"pixels" (B, length) uint8, "label"}`` of a batch of rows ``{"pixels" (bytes), "label", ...}``."""
    rows = np.frombuffer(b"".join(batch["pixels"]), dtype=np.uint8).reshape(len(batch["pixels"]), length)
    return {"pixels": rows, "label": batch["label"]}


class PathfinderDataModule(ClassificationDataModule):
    """Pathfinder (``resolution=32``) or Path-X (``resolution=128``): 2 classes, L = resolution ** 2.

    ``source="generate"`` draws ``n_images`` with the LRA generator at this resolution (settings
    ``SnakeParams.lra(resolution)``, any of them overridden by ``generator``; the contour length
    comes from ``difficulty``), in batches of ``images_per_batch`` seeded by ``(generator_seed,
    batch)``, by ``num_proc`` processes. ``source="release"`` reads ``release_dir`` (the
    ``pathfinder<res>`` folder, or a folder above it in the release's nesting); ``difficulty=None``
    pools every difficulty folder present. The images are split ``1 - val_fraction -
    test_fraction`` / ``val_fraction`` / ``test_fraction`` by a permutation seeded with ``split_seed``.
    """

    n_classes = 2
    cache_name = STORAGE  # both resolutions share one folder; the settings tell them apart

    def __init__(
        self,
        *,
        data_dir: str | Path,
        source: str = "generate",
        release_dir: str | Path | None = None,
        resolution: int = 32,
        difficulty: str | None = LRA_DIFFICULTY,
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
        num_proc: int = 1,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        if mode not in PIXEL_MODES:
            raise ValueError(f"mode must be one of {PIXEL_MODES}, got {mode!r}")
        if source == "release" and release_dir is None:
            raise ValueError(
                f"source='release' needs release_dir (the pathfinder{resolution} folder of the LRA release)"
            )
        if source == "generate" and difficulty not in DIFFICULTIES:
            raise ValueError(
                f"source='generate' needs difficulty in {sorted(DIFFICULTIES)} "
                f"(it sets the contour length), got {difficulty!r}"
            )
        if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
            raise ValueError(
                f"need val_fraction > 0, test_fraction > 0 and their sum below 1, got {val_fraction}, {test_fraction}"
            )
        self._set_loading(data_dir, batch_size, eval_batch_size, num_workers, num_proc)
        self.source = source
        self.release_dir = None if release_dir is None else Path(release_dir)
        self.resolution = resolution
        self.difficulty = difficulty
        self.task = TASK_NAMES.get(resolution, f"pathfinder{resolution}")
        self.make_target = f"make data-{self.task}"
        self.mode = mode
        self.input_kind = mode
        self.vocab_size = N_LEVELS + len(SPECIAL_TOKENS) if mode == "tokens" else None
        self.d_input = 1 if mode == "values" else None
        self.split_settings: dict[str, Any] = {
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "seed": split_seed,
        }
        self.generator_settings: dict[str, Any] | None = None
        self.params: SnakeParams | None = None
        if source == "generate":
            partition_sizes(n_images, val_fraction, test_fraction)
            self.params = self._snake_params(generator or {})
            self.generator_settings = {
                "params": self.params.as_dict(),
                "n_images": n_images,
                "images_per_batch": images_per_batch,
                "seed": generator_seed,
                "generator_version": GENERATOR_VERSION,
            }
        self.skipped_images: int | None = None

    def _snake_params(self, overrides: Mapping[str, Any]) -> SnakeParams:
        """LRA's generator settings at this resolution with ``overrides``; the difficulty sets the contour length."""
        overrides = dict(overrides)
        assert self.difficulty is not None  # checked in __init__ for generated data
        contour_length = DIFFICULTIES[self.difficulty]
        if overrides.setdefault("contour_length", contour_length) != contour_length:
            raise ValueError(
                f"generator.contour_length={overrides['contour_length']} contradicts "
                f"difficulty={self.difficulty!r} ({contour_length} paddles); set only the difficulty"
            )
        if "margins" in overrides:
            overrides["margins"] = tuple(overrides["margins"])
        return SnakeParams.lra(self.resolution, **overrides)

    def release_folder(self) -> Path:
        """The released folder holding the difficulty folders."""
        return locate_release(self.release_dir, self.resolution)

    def download(self) -> Path | None:
        """``source="release"``: fetch the LRA release (network; ``make data-pathfinder`` / ``make data-pathx``
        only) and unpack its ``pathfinder<resolution>/`` into ``release_dir`` as ``make data-lra`` does,
        unless present; return that folder. Generated images need nothing (None)."""
        if self.source == "generate":
            return None
        try:
            return self.release_folder()
        except DataNotFoundError:
            pass
        assert self.release_dir is not None  # checked in __init__ for released data
        fetch_release(self.data_dir, self.release_dir, folders=(f"pathfinder{self.resolution}",))
        return self.release_folder()

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the decoded cache depends on (not ``mode``: one cache serves values and tokens);
        released images by the content of their difficulty folders."""
        settings: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "source": self.source,
            "resolution": self.resolution,
            "difficulty": self.difficulty,
            "split": self.split_settings,
        }
        if self.source == "generate":
            settings["generator"] = self.generator_settings
        else:
            settings["release"] = {
                directory.name: self.digest(directory)
                for directory in difficulty_dirs(self.release_folder(), self.difficulty)
            }
        return settings

    def build(self, staging: Path) -> tuple[Mapping[str, Dataset], dict[str, Any]]:
        """Generate or read every image, split them by the seeded permutation, store each split's pixels."""
        if self.source == "generate":
            assert self.params is not None and self.generator_settings is not None  # set for generated data
            images = generated_dataset(
                self.params,
                self.generator_settings["n_images"],
                self.generator_settings["images_per_batch"],
                self.generator_settings["seed"],
                self.num_proc,
                staging,
            )
        else:
            images = release_dataset(self.release_folder(), self.difficulty, self.resolution, staging)
        readable = store.column(images, "readable")
        skipped = [images[int(index)]["image"] for index in np.flatnonzero(~readable)]
        columns: dict[str, store.Column] = {"pixels": ("uint8", self.resolution**2), "label": "int8"}
        splits = {}
        for split, indices in partition(len(images), **self.split_settings).items():
            kept = indices[readable[indices]]
            if not len(kept):
                raise ValueError(
                    f"all {len(indices)} images of the {split} split are empty or undecodable "
                    f"(first: {images[int(indices[0])]['image']}); the image files are damaged: "
                    f"unpack or generate them again"
                )
            splits[split] = store.map_batches(
                store.select(images, kept),
                pixel_batch,
                columns,
                staging,
                f"{split}-pixels",
                self.num_proc,
                length=self.resolution**2,
            )
        warn_skipped(skipped)
        return splits, {"skipped": skipped}

    def _learn(self, extra: dict[str, Any]) -> None:
        self.skipped_images = len(extra["skipped"])

    def _open(self, stored: store.Stored) -> None:
        self.splits = {
            split: PixelRows(Fixed.from_arrow(table.column("pixels")), labels(table.column("label")))
            for split, table in stored.tables.items()
        }

    def collate(self) -> Callable[[Any], dict[str, torch.Tensor]]:
        return PixelCollate(self.mode, mean=0.0, std=N_LEVELS - 1)
