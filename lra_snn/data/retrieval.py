"""LRA Retrieval (Tay et al. 2020): do two ACL Anthology Network papers (Radev et al. 2013) cite each other?

Source: the LRA release's ``tsv_data/new_aan_pairs.{train,eval,test}.tsv`` (eval serves as
validation): no header, 5 tab-separated columns ``label, id1, id2, text1, text2``, read with
quoting OFF (a quote inside an abstract is text; lines are split on newline and tab only). The
label is written as a number (``0``/``1``, or ``0.0``/``1.0`` as LRA's TF reader parses floats) and
must be 0 or 1. Each document is tokenised separately with the Text task's tokenisers (bytes as
LRA, or characters as S4, ``lra_snn.data.text``), truncated to ``max_length - 1`` tokens with EOS
appended (LRA: 4,000 per document). Batches hold both documents: ``inputs`` (B, 2, L) padded to the
batch's longest document and ``lengths`` (B, 2); the task encodes them with one shared encoder and
classifies ``[a, b, a*b, a-b]`` (data.md "Retrieval TSV").
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from lra_snn.data.base import ClassificationDataModule, make_loader
from lra_snn.data.cache import ensure_built
from lra_snn.data.download import extract, fetch_source
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.tokens import PAD_ID, TokenSplit, balanced_subset, load_token_split, save_token_split
from lra_snn.data.text import LEVELS, ByteTokenizer, Tokenizer, build_tokenizer, load_tokenizer, save_tokenizer, undecodable

log = logging.getLogger(__name__)

SPLIT_FILES = {"train": "new_aan_pairs.train.tsv", "val": "new_aan_pairs.eval.tsv", "test": "new_aan_pairs.test.tsv"}
SPLITS = tuple(SPLIT_FILES)
TSV_FOLDER = "tsv_data"
COLUMNS = ("label", "id1", "id2", "text1", "text2")
DOCUMENTS = ("first", "second")
MAKE_TARGET = "make data-retrieval"
CACHE_FORMAT = 1  # bump when the cached arrays change meaning

# --------------------------------------------------------------------------- reading the TSVs


def locate_release(release_dir: str | Path) -> Path:
    """The folder holding the three AAN TSVs: ``release_dir`` itself or the release's nesting below it."""
    root = Path(release_dir)
    candidates = [
        root,
        root / TSV_FOLDER,
        root / "lra_release" / TSV_FOLDER,
        root / "lra_release" / "lra_release" / TSV_FOLDER,
    ]
    for folder in candidates:
        if all((folder / name).is_file() for name in SPLIT_FILES.values()):
            return folder
    raise DataNotFoundError(
        root / TSV_FOLDER / SPLIT_FILES["train"],
        MAKE_TARGET,
        detail="looked for new_aan_pairs.{train,eval,test}.tsv in " + ", ".join(str(c) for c in candidates),
    )


@dataclass(frozen=True)
class PairRow:
    """One line of an AAN TSV: its 1-based line number, label and the two documents' raw bytes."""

    line: int
    label: int
    first: bytes
    second: bytes


def iter_rows(path: str | Path) -> Iterator[PairRow]:
    """Every row of an AAN TSV, checked: 5 tab-separated columns and a label of 0 or 1 (``file:line`` errors)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, MAKE_TARGET)
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            fields = _strip_line_end(raw).split(b"\t")
            if len(fields) != len(COLUMNS):
                raise DataFormatError(
                    path, line_number, f"expected {len(COLUMNS)} tab-separated columns ({', '.join(COLUMNS)}), found {len(fields)}"
                )
            yield PairRow(line_number, _parse_label(path, line_number, fields[0]), fields[3], fields[4])


def _strip_line_end(raw: bytes) -> bytes:
    """``raw`` without its ``\\n`` or ``\\r\\n`` terminator (other carriage returns are text)."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
    return raw


def _parse_label(path: Path, line_number: int, field: bytes) -> int:
    text = field.decode("ascii", errors="replace").strip()
    try:
        value = float(text)
    except ValueError:
        raise DataFormatError(path, line_number, f"label {text!r} is not a number") from None
    if value not in (0.0, 1.0):
        raise DataFormatError(path, line_number, f"label {text!r} is not 0 or 1")
    return int(value)


def read_labels(path: str | Path) -> np.ndarray:
    """Labels (int64) of every row, checking every row's format."""
    return np.fromiter((row.label for row in iter_rows(path)), dtype=np.int64)


def encode_rows(
    path: str | Path, tokenizer: Tokenizer, selected: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Token ids of both documents and the labels of the rows whose 0-based index is in ``selected``."""
    keep = set(selected.tolist())
    first, second, labels = [], [], []
    for index, row in enumerate(iter_rows(path)):
        if index in keep:
            first.append(_encode_document(tokenizer, path, row, 0))
            second.append(_encode_document(tokenizer, path, row, 1))
            labels.append(row.label)
    return first, second, np.asarray(labels, dtype=np.int64)


def iter_documents(path: str | Path, selected: np.ndarray) -> Iterator[bytes]:
    """Both documents of every selected row, each checked to be UTF-8 (for counting a character vocabulary)."""
    keep = set(selected.tolist())
    for index, row in enumerate(iter_rows(path)):
        if index in keep:
            for which, document in enumerate((row.first, row.second)):
                try:
                    document.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise undecodable(path, row.line, error, COLUMNS[3 + which]) from None
                yield document


def _encode_document(tokenizer: Tokenizer, path: str | Path, row: PairRow, which: int) -> np.ndarray:
    document = (row.first, row.second)[which]
    try:
        return tokenizer.encode(document)
    except UnicodeDecodeError as error:
        raise undecodable(path, row.line, error, COLUMNS[3 + which]) from None


# --------------------------------------------------------------------------- pairs on disk and in batches


@dataclass(frozen=True)
class PairSplit:
    """One split of document pairs: two token splits (first and second documents) sharing their labels."""

    first: TokenSplit
    second: TokenSplit

    @property
    def labels(self) -> np.ndarray:
        return self.first.labels

    def __len__(self) -> int:
        return len(self.first)


def save_pair_split(
    directory: str | Path, first: list[np.ndarray], second: list[np.ndarray], labels: np.ndarray, vocab_size: int
) -> None:
    """Write a pair split as ``<directory>/first`` and ``<directory>/second`` token splits."""
    for name, sequences in zip(DOCUMENTS, (first, second)):
        save_token_split(Path(directory) / name, sequences, labels, vocab_size=vocab_size)


def load_pair_split(directory: str | Path) -> PairSplit:
    """Memory-map a split written by ``save_pair_split`` and check its two halves agree."""
    split = PairSplit(*(load_token_split(Path(directory) / name) for name in DOCUMENTS))
    if not np.array_equal(split.first.labels, split.second.labels):
        raise ValueError(f"corrupt pair split in {directory}: the two documents' labels differ; delete the folder to rebuild it")
    return split


class PairDataset(Dataset):
    """Items ``(first ids, second ids, label)`` read from a ``PairSplit``."""

    def __init__(self, split: PairSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:
        first = torch.from_numpy(self.split.first.sequence(index).astype(np.int64))
        second = torch.from_numpy(self.split.second.sequence(index).astype(np.int64))
        return first, second, int(self.split.labels[index])


def collate_pairs(batch: Sequence[tuple[Tensor, Tensor, int]], pad_id: int = PAD_ID) -> dict[str, Tensor]:
    """Pad every document of a batch to its longest: ``inputs`` (B, 2, L), ``lengths`` (B, 2), ``labels`` (B,)."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    documents = [document for first, second, _ in batch for document in (first, second)]
    padded = pad_sequence(documents, batch_first=True, padding_value=pad_id)
    return {
        "inputs": padded.view(len(batch), 2, padded.shape[1]),
        "lengths": torch.tensor([len(d) for d in documents], dtype=torch.long).view(len(batch), 2),
        "labels": torch.tensor([label for _, _, label in batch], dtype=torch.long),
    }


# --------------------------------------------------------------------------- data module


class RetrievalDataModule(ClassificationDataModule):
    """LRA Retrieval: 2 classes, pairs of token sequences (``pair = True``), train/eval/test TSVs.

    ``release_dir`` holds the TSVs (itself, or its ``tsv_data``, ``lra_release/tsv_data`` or
    ``lra_release/lra_release/tsv_data``). ``n_train``/``n_val``/``n_test`` take seeded
    class-balanced subsets (None: all). The character vocabulary is counted on both documents of
    the training pairs in use. Training batches are shuffled in an order fixed by (seed, epoch).
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
    ) -> None:
        super().__init__()
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if max_length < 2:
            raise ValueError(f"max_length counts EOS and must be at least 2, got {max_length}")
        self._set_loading(data_dir, batch_size, eval_batch_size, num_workers)
        self.release_dir = Path(release_dir) if release_dir is not None else self.data_dir / "lra_release"
        self.level = level
        self.min_freq = min_freq
        self.max_length = max_length
        self.subset_sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.subset_seed = subset_seed
        self.vocab_size = len(ByteTokenizer.vocab) if level == "byte" else None  # char: known once the cache exists

    # ------------------------------------------------------------------ locations and settings

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the tokenised cache depends on (the TSVs' folder and sizes included)."""
        folder = locate_release(self.release_dir)
        settings: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "release": {
                "folder": str(folder.resolve()),
                "bytes": {name: (folder / name).stat().st_size for name in SPLIT_FILES.values()},
            },
            "level": self.level,
            "max_length": self.max_length,
            "subsets": {**self.subset_sizes, "seed": self.subset_seed},
        }
        if self.level == "char":
            settings["min_freq"] = self.min_freq
        return settings

    # ------------------------------------------------------------------ Lightning hooks

    def download(self) -> Path:
        """Fetch the LRA release (network; ``make data-retrieval`` only) and extract the three AAN TSVs
        into ``<release_dir>/tsv_data/``; return that folder. Does nothing when the TSVs are present."""
        try:
            return locate_release(self.release_dir)
        except DataNotFoundError:
            pass
        archive = fetch_source("lra_release", self.downloads_dir())
        staging = extract(archive, self.downloads_dir() / "lra_release_aan", members=is_aan_member)
        target = self.release_dir / TSV_FOLDER
        target.mkdir(parents=True, exist_ok=True)
        for path in staging.rglob("*.tsv"):
            os.replace(path, target / path.name)
        shutil.rmtree(staging)
        return locate_release(self.release_dir)

    def prepare_data(self) -> None:
        """Tokenise the three TSVs into the cache unless it is complete; learn the vocabulary size."""
        directory = ensure_built(self.cache_dir(), self.cache_settings(), self._write_cache)
        self.vocab_size = load_tokenizer(directory, level=self.level, max_length=self.max_length).vocab_size

    def setup(self, stage: str | None = None) -> None:
        """Memory-map the cached pair splits (built by ``prepare_data``) after checking settings and vocabulary."""
        directory = self.built_cache_dir("tokenised cache")
        self.vocab_size = load_tokenizer(directory, level=self.level, max_length=self.max_length).vocab_size
        self.splits = {split: load_pair_split(directory / split) for split in SPLITS}

    def class_counts(self, split: str) -> np.ndarray:
        """Pairs per class (0: no citation, 1: citation) in ``split``."""
        return np.bincount(self._split(split).labels, minlength=self.n_classes)

    # ------------------------------------------------------------------ helpers

    def _write_cache(self, target: Path) -> None:
        started = time.perf_counter()
        folder = locate_release(self.release_dir)
        paths = {split: folder / name for split, name in SPLIT_FILES.items()}
        selected = {
            split: balanced_subset(read_labels(path), self.subset_sizes[split], self.subset_seed, self.n_classes,
                                   name=path.name)
            for split, path in paths.items()
        }
        tokenizer = build_tokenizer(
            self.level,
            max_length=self.max_length,
            min_freq=self.min_freq,
            train_documents=iter_documents(paths["train"], selected["train"]),
        )
        for split, path in paths.items():
            first, second, labels = encode_rows(path, tokenizer, selected[split])
            save_pair_split(target / split, first, second, labels, tokenizer.vocab_size)
        save_tokenizer(target, tokenizer, {split: len(indices) for split, indices in selected.items()})
        log.info("retrieval: tokenised %s in %.1f s (%s level, vocabulary %d)", folder, time.perf_counter() - started,
                 self.level, tokenizer.vocab_size)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        return make_loader(PairDataset(self._split(split)), batch_size, shuffle,
                           collate_pairs, self.num_workers)


def is_aan_member(name: str) -> bool:
    """Whether an LRA release member is one of the AAN TSVs (``.../tsv_data/new_aan_pairs.*.tsv``)."""
    folder, _, filename = name.rpartition("/")
    return filename in SPLIT_FILES.values() and folder.rpartition("/")[2] == TSV_FOLDER
