"""LightningDataModule for LRA ListOps (Tay et al. 2020): generated or released examples, tokenised once.

``prepare_data`` builds the cache (``lra_snn.data.store``): the examples of each split
(``lra_snn.data.listops.source``) tokenised by a batched ``map`` into ``ids`` (int16, EOS
appended, never truncated) and ``label`` (int8). ``setup`` memory-maps it; batches are
``{"inputs", "lengths", "labels"}`` padded per batch. Where ``datasets`` is not installed (a bare
GPU machine) the same examples are generated or read, and tokenised by the same function, in
memory at every ``setup``, without a cache: the batches are the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lra_snn.data import store
from lra_snn.data.base import ClassificationDataModule
from lra_snn.data.collate import collate_tokens
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.listops.generate import GENERATOR_VERSION, ListOpsTokenizer
from lra_snn.data.listops.source import (
    MAKE_TARGET,
    SOURCES,
    SPLIT_FILES,
    generated_dataset,
    generated_rows,
    locate_release,
    release_dataset,
    release_rows,
)
from lra_snn.data.lra_release import FOLDERS, fetch_release
from lra_snn.data.splits import check_split_sizes
from lra_snn.data.tokenizers import token_feature
from lra_snn.data.views import Ragged, TokenRows, labels

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # bump when the cached columns change meaning (2: datasets store, int16 ids)


def encode_batch(batch: dict[str, list], *, tokenizer: ListOpsTokenizer, origin: str) -> dict[str, list]:
    """``{"ids", "label"}`` of a batch of rows ``{"expression", "label", "line"}``; an expression too
    long for the tokenizer is an error naming ``origin`` (its file) and the line."""
    ids = []
    for expression, line in zip(batch["expression"], batch["line"]):
        try:
            ids.append(tokenizer.encode(expression))
        except ValueError as error:
            raise DataFormatError(origin, line, str(error)) from None
    return {"ids": ids, "label": batch["label"]}


class ListOpsDataModule(ClassificationDataModule):
    """ListOps: 10 classes, token inputs (vocabulary of 18), train/val/test.

    ``source="generate"`` draws ``n_train + n_val + n_test`` distinct trees with the LRA recipe
    (bounds and seed as given); ``source="release"`` reads ``basic_{train,val,test}.tsv`` from
    ``release_dir`` (or its ``listops-1000``, ``lra_release/listops-1000`` or
    ``lra_release/lra_release/listops-1000`` subfolder). ``max_seq_len`` bounds a sequence
    including EOS; a longer expression is an error. ``num_proc`` processes tokenise.
    """

    task = "listops"
    make_target = MAKE_TARGET
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
        num_proc: int = 1,
        max_seq_len: int = 2048,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        if source == "release" and release_dir is None:
            raise ValueError("source='release' needs release_dir (the folder holding listops-1000/)")
        if source == "generate":
            check_split_sizes({"train": n_train, "val": n_val, "test": n_test}, whole=False)
        self._set_loading(data_dir, batch_size, eval_batch_size, num_workers, num_proc)
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
        self.tokenizer = ListOpsTokenizer(max_length=max_seq_len)
        self.vocab_size = self.tokenizer.vocab_size

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the tokenised cache depends on (release files by content)."""
        settings: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "source": self.source,
            "vocab": list(self.tokenizer.vocab),
            "max_seq_len": self.tokenizer.max_length,
        }
        if self.source == "generate":
            settings["generator"] = {**self.generator_settings, "generator_version": GENERATOR_VERSION}
        else:
            folder = locate_release(self.release_dir)
            settings["release"] = {name: self.digest(folder / name) for name in SPLIT_FILES.values()}
        return settings

    def _origins(self) -> dict[str, str]:
        """What names an example's line in errors, per split: its release file, or the generator."""
        if self.source == "generate":
            return {split: f"<generated ListOps {split}>" for split in SPLIT_FILES}
        folder = locate_release(self.release_dir)
        return {split: str(folder / name) for split, name in SPLIT_FILES.items()}

    def download(self) -> Path | None:
        """``source="release"``: fetch the LRA release (network; ``make data-listops`` only) and unpack its
        ``listops-1000/`` into ``release_dir`` as ``make data-lra`` does, unless present; return that folder.
        Generated data needs nothing (None)."""
        if self.source == "generate":
            return None
        try:
            return locate_release(self.release_dir)
        except DataNotFoundError:
            pass
        assert self.release_dir is not None  # checked in __init__ for released data
        fetch_release(self.data_dir, self.release_dir, folders=(FOLDERS["listops"],))
        return locate_release(self.release_dir)

    def build(self, staging: Path) -> tuple[Mapping[str, Dataset], dict[str, Any]]:
        """Generate or read the examples, then tokenise each split with a batched ``map``."""
        if self.source == "generate":
            raw = generated_dataset(self.generator_settings)
        else:
            raw = release_dataset(locate_release(self.release_dir))
        columns: dict[str, store.Column] = {"ids": [token_feature(self.tokenizer.vocab_size)], "label": "int8"}
        origins = self._origins()
        return {
            split: store.map_batches(
                dataset,
                encode_batch,
                columns,
                staging,
                f"{split}-tokens",
                self.num_proc,
                tokenizer=self.tokenizer,
                origin=origins[split],
            )
            for split, dataset in raw.items()
        }, {}

    def prepare_data(self) -> None:
        """Build the cache; without ``datasets``, nothing (``setup`` builds the splits in memory)."""
        if store.have_datasets():
            super().prepare_data()

    def setup(self, stage: str | None = None) -> None:
        """Memory-map the cached splits; without ``datasets``, generate or read and tokenise them here."""
        if store.have_datasets():
            super().setup(stage)
            return
        log.warning(
            "`datasets` is not installed: ListOps examples are %s and tokenised in memory, without a cache",
            "generated" if self.source == "generate" else "read",
        )
        rows = (
            generated_rows(self.generator_settings)
            if self.source == "generate"
            else release_rows(locate_release(self.release_dir))
        )
        origins = self._origins()
        self.splits = {}
        for split, split_rows in rows.items():
            columns = {key: [row[key] for row in split_rows] for key in ("expression", "label", "line")}
            encoded = encode_batch(columns, tokenizer=self.tokenizer, origin=origins[split])
            ids = Ragged.from_sequences(encoded["ids"], np.dtype(token_feature(self.tokenizer.vocab_size)))
            self.splits[split] = TokenRows(ids, np.asarray(encoded["label"], dtype=np.int64))

    def _open(self, stored: store.Stored) -> None:
        self.splits = {
            split: TokenRows(Ragged.from_arrow(table.column("ids")), labels(table.column("label")))
            for split, table in stored.tables.items()
        }

    def collate(self) -> Callable[[Any], dict[str, torch.Tensor]]:
        return collate_tokens
