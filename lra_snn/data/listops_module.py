"""LightningDataModule for LRA ListOps (Tay et al. 2020): generated or released TSVs, tokenised once into a cache.

``prepare_data`` writes the generated TSVs (LRA recipe, ``lra_snn.data.listops``) under
``<data_dir>/listops/generated/<hash of generator settings>/listops-1000/`` when absent, then
tokenises the three splits into ``<data_dir>/cache/listops/<hash of every setting>/``.
``setup`` only memory-maps that cache. Batches are ``{"inputs", "lengths", "labels"}`` padded per
batch (``lra_snn.data.tokens.collate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from lra_snn.data import listops
from lra_snn.data.base import ClassificationDataModule, make_loader
from lra_snn.data.cache import ensure_built, is_complete, settings_hash
from lra_snn.data.errors import DataNotFoundError
from lra_snn.data.tokens import TokenDataset, collate, load_token_split, save_token_split

SOURCES = ("generate", "release")
SPLITS = tuple(listops.SPLIT_FILES)
CACHE_FORMAT = 1  # bump when the cached arrays change meaning


class ListOpsDataModule(ClassificationDataModule):
    """ListOps: 10 classes, token inputs (vocabulary of 18), train/val/test from one TSV folder.

    ``source="generate"`` draws ``n_train + n_val + n_test`` distinct trees with the LRA recipe
    (bounds and seed as given); ``source="release"`` reads ``basic_{train,val,test}.tsv`` from
    ``release_dir`` (or its ``listops-1000``, ``lra_release/listops-1000`` or
    ``lra_release/lra_release/listops-1000`` subfolder). ``max_seq_len`` bounds a sequence
    including EOS; a longer expression is an error. Training batches are shuffled in an order fixed
    by (seed, epoch).
    """

    task = "listops"
    make_target = listops.MAKE_TARGET
    n_classes = 10
    input_kind = "tokens"

    def __init__(
        self,
        *,
        data_dir: str | Path,
        source: str = "generate",
        release_dir: str | Path | None = None,
        n_train: int = 96_000,
        n_val: int = 2_000,
        n_test: int = 2_000,
        min_length: int = 500,
        max_length: int = 2000,
        max_depth: int = 10,
        max_args: int = 10,
        generator_seed: int = 0,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        max_seq_len: int = 2048,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        if source == "release" and release_dir is None:
            raise ValueError("source='release' needs release_dir (the folder holding listops-1000/)")
        self._set_loading(data_dir, batch_size, eval_batch_size, num_workers)
        self.source = source
        self.release_dir = None if release_dir is None else Path(release_dir)
        self.generator_settings = {
            "n_train": n_train,
            "n_val": n_val,
            "n_test": n_test,
            "min_length": min_length,
            "max_length": max_length,
            "max_depth": max_depth,
            "max_args": max_args,
            "seed": generator_seed,
        }
        self.tokenizer = listops.ListOpsTokenizer(max_length=max_seq_len)
        self.vocab_size = self.tokenizer.vocab_size

    # ------------------------------------------------------------------ locations and settings

    def generated_settings(self) -> dict[str, Any]:
        """Every setting the generated TSVs depend on: the generator's arguments and its version."""
        return {**self.generator_settings, "generator_version": listops.GENERATOR_VERSION}

    def generated_dir(self) -> Path:
        """Folder of the generated TSVs' build (holds ``listops-1000/`` and ``meta.json``)."""
        return self.data_dir / self.task / "generated" / settings_hash(self.generated_settings())

    def tsv_folder(self) -> Path:
        """Folder holding ``basic_{train,val,test}.tsv`` (generated ones must exist already)."""
        if self.source == "release":
            return listops.locate_release(self.release_dir)
        folder = self.generated_dir() / listops.RELEASE_FOLDER
        if not is_complete(self.generated_dir()):
            raise DataNotFoundError(folder, listops.MAKE_TARGET, detail="generated ListOps files are missing")
        return folder

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the tokenised cache depends on."""
        settings: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "source": self.source,
            "vocab": list(self.tokenizer.vocab),
            "max_seq_len": self.tokenizer.max_length,
        }
        if self.source == "generate":
            settings["generator"] = self.generated_settings()
        else:
            folder = listops.locate_release(self.release_dir)
            settings["release"] = {
                "folder": str(folder.resolve()),
                "bytes": {name: (folder / name).stat().st_size for name in listops.SPLIT_FILES.values()},
            }
        return settings

    # ------------------------------------------------------------------ Lightning hooks

    def prepare_data(self) -> None:
        """Generate the TSVs if needed, then tokenise them into the cache unless it is complete."""
        if self.source == "generate":
            ensure_built(self.generated_dir(), self.generated_settings(), self._write_generated)
        folder = self.tsv_folder()
        ensure_built(self.cache_dir(), self.cache_settings(), lambda target: self._write_token_splits(folder, target))

    def setup(self, stage: str | None = None) -> None:
        """Memory-map the three tokenised splits from the cache (built by ``prepare_data``)."""
        directory = self.built_cache_dir("tokenised cache")
        self.splits = {split: load_token_split(directory / split) for split in SPLITS}

    def class_counts(self, split: str) -> np.ndarray:
        """Examples per class (length ``n_classes``) in ``split``."""
        return np.bincount(self._split(split).labels, minlength=self.n_classes)

    # ------------------------------------------------------------------ helpers

    def _write_generated(self, target: Path) -> None:
        listops.write_release(target, **self.generator_settings)

    def _write_token_splits(self, folder: Path, target: Path) -> None:
        for split, name in listops.SPLIT_FILES.items():
            sequences, labels = self.tokenizer.encode_file(folder / name)
            save_token_split(target / split, sequences, labels, vocab_size=self.tokenizer.vocab_size)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        return make_loader(TokenDataset(self._split(split)), batch_size, shuffle, collate, self.num_workers)
