"""LightningDataModule for LRA Retrieval (Tay et al. 2020): do two AAN papers cite each other?

The pairs (``lra_snn.data.retrieval.source``) are subset and tokenised by a batched ``map`` into
``first`` and ``second`` (int16 ids) and ``label`` (int8), cached (``lra_snn.data.store``) with the
tokeniser's vocabulary. Each document is tokenised separately, bytes as LRA or characters as the S4
code base (``lra_snn.data.tokenizers``), truncated to ``max_length - 1`` tokens with EOS appended
(LRA: 4,000 per document). Batches hold both documents: ``inputs`` (B, 2, L) padded to the batch's
longest document and ``lengths`` (B, 2); the task encodes them with one shared encoder and
classifies ``[a, b, a*b, a-b]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lra_snn.data import store
from lra_snn.data.base import ClassificationDataModule
from lra_snn.data.collate import collate_pairs
from lra_snn.data.errors import DataNotFoundError
from lra_snn.data.lra_release import FOLDERS, default_release_dir, fetch_release
from lra_snn.data.retrieval.source import (
    COLUMNS,
    MAKE_TARGET,
    SPLIT_FILES,
    locate_release,
    release_dataset,
)
from lra_snn.data.splits import balanced_subset, check_split_sizes
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
from lra_snn.data.views import PairRows, Ragged, labels

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset

log = logging.getLogger(__name__)

DOCUMENTS = ("first", "second")
CACHE_FORMAT = 2  # bump when the cached columns change meaning (2: datasets store, int16 ids)


def encode_pairs(batch: dict[str, list], *, tokenizer: Tokenizer, origin: str) -> pa.Table:
    """``{"first", "second", "label"}`` ids of a batch of pairs, as one Arrow table; a document that is
    not UTF-8 (character level) names ``origin`` (its file), the line and the column."""
    import pyarrow as pa

    try:
        encoded = {key: store.list_array(*tokenizer.encode_batch(batch[key])) for key in DOCUMENTS}
    except UnicodeDecodeError:
        found = first_undecodable(document for pair in zip(batch["first"], batch["second"]) for document in pair)
        assert found is not None  # the tokeniser decodes the same bytes
        index, error = found
        raise undecodable(origin, batch["line"][index // 2], error, COLUMNS[3 + index % 2]) from None
    return pa.table({**encoded, "label": pa.array(batch["label"], type=pa.int8())})


def _checked_documents(pairs: Dataset, origin: str) -> Iterator[bytes]:
    """Both documents of every pair, each checked to be UTF-8 (counting a character vocabulary needs text)."""
    for batch in pairs.iter(batch_size=1000):
        for line, *documents in zip(batch["line"], batch["first"], batch["second"]):
            for which, document in enumerate(documents):
                try:
                    document.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise undecodable(origin, line, error, COLUMNS[3 + which]) from None
                yield document


class RetrievalDataModule(ClassificationDataModule):
    """LRA Retrieval: 2 classes, pairs of token sequences (``pair = True``), train/eval/test TSVs.

    ``release_dir`` holds the TSVs (itself, or its ``tsv_data``, ``lra_release/tsv_data`` or
    ``lra_release/lra_release/tsv_data``). ``n_train``/``n_val``/``n_test`` take seeded
    class-balanced subsets (None: all). The character vocabulary is counted on both documents of
    the training pairs in use.
    """

    task = "retrieval"
    make_target = MAKE_TARGET
    n_classes = 2
    input_kind = "tokens"
    pair = True

    def __init__(
        self,
        *,
        data_dir: str | Path,
        release_dir: str | Path | None = None,
        level: str = "byte",
        min_freq: int = 15,
        max_length: int = 4000,
        n_train: int | None = None,
        n_val: int | None = None,
        n_test: int | None = None,
        subset_seed: int = 0,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        num_proc: int = 1,
    ) -> None:
        super().__init__()
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        check_max_length(max_length)
        self._set_loading(data_dir, batch_size, eval_batch_size, num_workers, num_proc)
        self.release_dir = Path(release_dir) if release_dir is not None else default_release_dir(self.data_dir)
        self.level = level
        self.min_freq = min_freq
        self.max_length = max_length
        self.subset_sizes = {"train": n_train, "val": n_val, "test": n_test}
        check_split_sizes(self.subset_sizes, whole=True)
        self.subset_seed = subset_seed
        self.vocab_size = len(ByteTokenizer.vocab) if level == "byte" else None  # char: known once the cache exists

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the tokenised cache depends on (the TSVs by content)."""
        folder = locate_release(self.release_dir)
        settings: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "release": {name: self.digest(folder / name) for name in SPLIT_FILES.values()},
            "level": self.level,
            "max_length": self.max_length,
            "subsets": {**self.subset_sizes, "seed": self.subset_seed},
        }
        if self.level == "char":
            settings["min_freq"] = self.min_freq
        return settings

    def download(self) -> Path:
        """Fetch the LRA release (network; ``make data-retrieval`` only) and unpack its AAN TSVs into
        ``<release_dir>/tsv_data/``, as ``make data-lra`` does; return that folder. Does nothing when the
        TSVs are present."""
        try:
            return locate_release(self.release_dir)
        except DataNotFoundError:
            pass
        fetch_release(self.data_dir, self.release_dir, folders=(FOLDERS["retrieval"],))
        return locate_release(self.release_dir)

    def build(self, staging: Path) -> tuple[Mapping[str, Dataset], dict[str, Any]]:
        """Read the TSVs, take the subsets, count the vocabulary on train, tokenise with ``map``."""
        folder = locate_release(self.release_dir)
        origins = {split: str(folder / name) for split, name in SPLIT_FILES.items()}
        chosen = {}
        for split, pairs in release_dataset(folder).items():
            subset = balanced_subset(
                store.column(pairs, "label"),
                self.subset_sizes[split],
                self.subset_seed,
                self.n_classes,
                name=SPLIT_FILES[split],
            )
            chosen[split] = store.select(pairs, subset)
        tokenizer = build_tokenizer(
            self.level,
            max_length=self.max_length,
            min_freq=self.min_freq,
            train_documents=_checked_documents(chosen["train"], origins["train"]),
        )
        ids = [token_feature(tokenizer.vocab_size)]
        columns: dict[str, store.Column] = {"first": ids, "second": ids, "label": "int8"}
        splits = {
            split: store.map_batches(
                pairs,
                encode_pairs,
                columns,
                staging,
                f"{split}-tokens",
                self.num_proc,
                tokenizer=tokenizer,
                origin=origins[split],
            )
            for split, pairs in chosen.items()
        }
        log.info("retrieval: %s tokenised (%s level, vocabulary %d)", folder, self.level, tokenizer.vocab_size)
        return splits, {"tokenizer": tokenizer_record(tokenizer)}

    def _learn(self, extra: dict[str, Any]) -> None:
        self.vocab_size = tokenizer_from_record(extra["tokenizer"], self.max_length).vocab_size

    def _open(self, stored: store.Stored) -> None:
        self.splits = {
            split: PairRows(
                Ragged.from_arrow(table.column("first")),
                Ragged.from_arrow(table.column("second")),
                labels(table.column("label")),
            )
            for split, table in stored.tables.items()
        }

    def collate(self) -> Callable[[Any], dict[str, torch.Tensor]]:
        return collate_pairs
