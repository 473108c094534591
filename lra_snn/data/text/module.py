"""LightningDataModule for LRA Text (Tay et al. 2020): IMDB reviews as byte or character sequences.

The reviews (``lra_snn.data.text.source``: the release archive or the Hub) are split, subset and
tokenised by a batched ``map`` into ``ids`` (int16) and ``label`` (int8), cached
(``lra_snn.data.store``) with the tokeniser's vocabulary. Tokenisation (``lra_snn.data.tokenizers``):
``level="byte"`` as LRA (vocabulary 259) or ``level="char"`` as the S4 code base (characters seen
at least ``min_freq`` times in the training reviews in use; about 135 ids with min_freq 15). A
review is truncated to ``max_length - 1`` tokens and EOS appended (L = 4,096 in LRA and S4).
Validation is a seeded fraction of train held out of it (``val_split="train"``, the default, so
that model selection never sees test) or the test split itself (``val_split="test"``, the IMDB
convention of the S4 code base, kept selectable to reproduce it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lra_snn.data import store
from lra_snn.data.base import ClassificationDataModule
from lra_snn.data.collate import collate_tokens
from lra_snn.data.download import SOURCES as DOWNLOADS
from lra_snn.data.download import fetch_hub, fetch_source, hub_folder, saved_hub
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.splits import balanced_subset, check_split_sizes, holdout_split
from lra_snn.data.text.source import (
    HUB_CONFIG,
    HUB_LAYOUT,
    HUB_PATH,
    MAKE_TARGET,
    hub_dataset,
    locate_source,
    release_dataset,
)
from lra_snn.data.tokenizers import (
    LEVELS,
    ByteTokenizer,
    Tokenizer,
    build_tokenizer,
    check_max_length,
    first_undecodable,
    token_feature,
    tokenizer_from_record,
    tokenizer_record,
    undecodable,
)
from lra_snn.data.views import Ragged, TokenRows, labels

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset

SOURCES = ("release", "hub")
VAL_SPLITS = ("test", "train")
CACHE_FORMAT = 2  # bump when the cached columns change meaning (2: datasets store, int16 ids)


def _review_error(origin: str, name: str, data: bytes, error: UnicodeDecodeError) -> DataFormatError:
    """The error for a review that is not UTF-8, naming its file (``origin/name``) and line."""
    return undecodable(f"{origin}/{name}", data[: error.start].count(b"\n") + 1, error, "review")


def encode_reviews(batch: dict[str, list], *, tokenizer: Tokenizer, origin: str) -> pa.Table:
    """``{"ids", "label"}`` of a batch of reviews ``{"text", "label", "name"}``, as one Arrow table."""
    import pyarrow as pa

    try:
        ids, offsets = tokenizer.encode_batch(batch["text"])
    except UnicodeDecodeError:
        found = first_undecodable(batch["text"])
        assert found is not None  # the tokeniser decodes the same bytes
        index, error = found
        raise _review_error(origin, batch["name"][index], batch["text"][index], error) from None
    return pa.table({"ids": store.list_array(ids, offsets), "label": pa.array(batch["label"], type=pa.int8())})


def _checked_documents(reviews: Dataset, origin: str) -> Iterator[bytes]:
    """The reviews' bytes, each checked to be UTF-8 (counting a character vocabulary needs text)."""
    for batch in reviews.iter(batch_size=1000):
        for data, name in zip(batch["text"], batch["name"]):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _review_error(origin, name, data, error) from None
            yield data


class TextDataModule(ClassificationDataModule):
    """LRA Text: 2 classes, token inputs, 25k train / 25k test reviews; validation held out of train.

    ``source="release"``: ``archives`` lists candidate sources (tarballs or unpacked folders), the
    first that exists is read; by default ``<data_dir>/downloads/aclImdb_v1.tar.gz``, where
    ``download()`` puts it. ``source="hub"``: the Hub dataset ``hub_path`` (config ``hub_config``),
    which ``download()`` keeps under ``<data_dir>/downloads/hub/``. ``val_split="train"`` holds out
    ``val_fraction`` of train (seeded by ``split_seed``) as the validation split; ``"test"``
    validates on the test split itself (the S4 code base). Either way the loaders serve the
    ``"val"`` split (``val_dataloader``), which is the test split's examples for ``"test"``.
    ``n_train``/``n_val``/``n_test`` take seeded class-balanced subsets (None: all).
    """

    task = "text"
    make_target = MAKE_TARGET
    n_classes = 2
    input_kind = "tokens"

    def __init__(
        self,
        *,
        data_dir: str | Path,
        source: str = "release",
        archives: Sequence[str | Path] | None = None,
        hub_path: str = HUB_PATH,
        hub_config: str = HUB_CONFIG,
        level: str = "byte",
        min_freq: int = 15,
        max_length: int = 4096,
        val_split: str = "train",
        val_fraction: float = 0.1,
        split_seed: int = 42,
        n_train: int | None = None,
        n_val: int | None = None,
        n_test: int | None = None,
        subset_seed: int = 0,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        num_proc: int = 1,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if val_split not in VAL_SPLITS:
            raise ValueError(f"val_split must be one of {VAL_SPLITS}, got {val_split!r}")
        if val_split == "test" and n_val is not None:
            raise ValueError(
                "n_val applies to val_split='train' only; with val_split='test' validation is the test split"
            )
        check_max_length(max_length)
        self._set_loading(data_dir, batch_size, eval_batch_size, num_workers, num_proc)
        self.source = source
        default = self.downloads_dir() / DOWNLOADS["imdb"].filename
        self.archives = [Path(a) for a in archives] if archives else [default]
        self.hub_path = hub_path
        self.hub_config = hub_config
        self.level = level
        self.min_freq = min_freq
        self.max_length = max_length
        self.validation_source = val_split  # not ``val_split``: that attribute names the split val_dataloader serves
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.subset_sizes = {"train": n_train, "val": n_val, "test": n_test}
        check_split_sizes(self.subset_sizes, whole=True)
        self.subset_seed = subset_seed
        self.vocab_size = len(ByteTokenizer.vocab) if level == "byte" else None  # char: known once the cache exists

    # ------------------------------------------------------------------ sources and settings

    def hub_snapshot(self) -> Path:
        """Where ``download()`` keeps the Hub dataset."""
        return hub_folder(self.downloads_dir(), self.hub_path, self.hub_config)

    def source_path(self) -> Path:
        """The archive or folder to read (release), or the Hub snapshot; ``DataNotFoundError`` if absent."""
        if self.source == "release":
            return locate_source(self.archives)
        return saved_hub(self.hub_snapshot(), self.hub_path, self.hub_config, MAKE_TARGET)

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the tokenised cache depends on (the source by content)."""
        settings: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "source": {"kind": self.source, "sha256": self.digest(self.source_path())},
            "level": self.level,
            "max_length": self.max_length,
            "val_split": self.validation_source,
            "subsets": {**self.subset_sizes, "seed": self.subset_seed},
        }
        if self.level == "char":
            settings["min_freq"] = self.min_freq
        if self.validation_source == "train":
            settings["holdout"] = {"fraction": self.val_fraction, "seed": self.split_seed}
        return settings

    # ------------------------------------------------------------------ Lightning hooks

    def download(self) -> Path:
        """Fetch the source (network; ``make data-text`` only) unless present; return it. Release: the
        official IMDB tarball into ``<data_dir>/downloads/``; Hub: ``hub_path`` into ``hub_snapshot()``."""
        if self.source == "hub":
            return fetch_hub(self.hub_path, self.hub_config, self.hub_snapshot(), HUB_LAYOUT)
        try:
            return locate_source(self.archives)
        except DataNotFoundError:
            return fetch_source("imdb", self.downloads_dir())

    def build(self, staging: Path) -> tuple[Mapping[str, Dataset], dict[str, Any]]:
        """Read the reviews, choose each split's, count the vocabulary on train, tokenise with ``map``."""
        path = self.source_path()
        raw = release_dataset(path) if self.source == "release" else hub_dataset(path, staging)
        chosen = self._select(raw)
        tokenizer = build_tokenizer(
            self.level,
            max_length=self.max_length,
            min_freq=self.min_freq,
            train_documents=_checked_documents(chosen["train"], str(path)),
        )
        columns: dict[str, store.Column] = {"ids": [token_feature(tokenizer.vocab_size)], "label": "int8"}
        splits = {
            split: store.map_batches(
                reviews,
                encode_reviews,
                columns,
                staging,
                f"{split}-tokens",
                self.num_proc,
                tokenizer=tokenizer,
                origin=str(path),
            )
            for split, reviews in chosen.items()
        }
        return splits, {"tokenizer": tokenizer_record(tokenizer)}

    def _select(self, raw: dict[str, Dataset]) -> dict[str, Dataset]:
        """Per stored split, its reviews: validation held out of train (``val_split="train"``), then subsets."""
        train, test = raw["train"], raw["test"]
        if self.validation_source == "train":
            kept, held_out = holdout_split(len(train), self.val_fraction, self.split_seed)
            chosen = {"train": (train, kept), "val": (train, held_out), "test": (test, np.arange(len(test)))}
        else:
            chosen = {"train": (train, np.arange(len(train))), "test": (test, np.arange(len(test)))}
        result = {}
        for split, (reviews, indices) in chosen.items():
            subset = balanced_subset(
                store.column(reviews, "label")[indices],
                self.subset_sizes[split],
                self.subset_seed,
                self.n_classes,
                name=f"the {split} split",
            )
            result[split] = store.select(reviews, indices[subset])
        return result

    def _learn(self, extra: dict[str, Any]) -> None:
        self.vocab_size = tokenizer_from_record(extra["tokenizer"], self.max_length).vocab_size

    def _open(self, stored: store.Stored) -> None:
        self.splits = {
            split: TokenRows(Ragged.from_arrow(table.column("ids")), labels(table.column("label")))
            for split, table in stored.tables.items()
        }
        self.splits.setdefault("val", self.splits["test"])  # val_split="test": validation is the test split

    def collate(self) -> Callable[[Any], dict[str, torch.Tensor]]:
        return collate_tokens
