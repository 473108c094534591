"""LRA Text (Tay et al. 2020): IMDB movie reviews (Maas et al. 2011) as byte or character sequences.

Source: the official ``aclImdb_v1.tar.gz`` layout ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``,
streamed straight from the tarball in one pass (nothing is extracted) or read from an unpacked
folder; label pos = 1, neg = 0. Tokenisation (data.md "Text"): ``level="byte"`` as LRA (UTF-8
bytes, id = byte + 3 after ``<pad> <unk> <eos>``, vocabulary 259) or ``level="char"`` as S4
(characters seen at least ``min_freq`` times in the training reviews, most frequent first, the rest
``<unk>``; about 135 ids with min_freq 15). A review is truncated to ``max_length - 1`` tokens and
EOS appended (L = 4,096 in LRA and S4). Validation is the test split (``val_split="test"``, as LRA
and S4 do) or a seeded fraction of train (``val_split="train"``). The tokenisers and the vocabulary
stored in the cache are shared with LRA Retrieval (``lra_snn.data.retrieval``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from lra_snn.data.base import ClassificationDataModule, make_loader
from lra_snn.data.cache import ensure_built
from lra_snn.data.download import SOURCES, fetch_source, iter_archive_files, reading_archive
from lra_snn.data.errors import CacheMismatchError, DataFormatError, DataNotFoundError
from lra_snn.data.tokens import (
    EOS_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    TokenDataset,
    balanced_subset,
    collate,
    holdout_split,
    load_token_split,
    save_token_split,
)

log = logging.getLogger(__name__)

LEVELS = ("byte", "char")
VAL_SPLITS = ("test", "train")
SPLITS = ("train", "val", "test")
IMDB_SPLITS = ("train", "test")
SENTIMENT_LABELS = {"neg": 0, "pos": 1}
REVIEW_NAME = re.compile(r"(?:.*/)?aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt")
MAKE_TARGET = "make data-text"
CACHE_FORMAT = 1  # bump when the cached arrays change meaning
VOCAB_FILE = "vocab.json"
CONTENTS_FILE = "contents.json"
_NO_CODE_POINT = 0xFFFFFFFF  # above every Unicode code point (the largest is 0x10FFFF)

# --------------------------------------------------------------------------- tokenisers


class ByteTokenizer:
    """LRA byte level: each UTF-8 byte is one token, id = byte + 3; truncate to max_length - 1, append EOS."""

    level = "byte"
    vocab = SPECIAL_TOKENS + tuple(f"<0x{value:02X}>" for value in range(256))

    def __init__(self, max_length: int) -> None:
        self.max_length = _check_max_length(max_length)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, data: bytes) -> np.ndarray:
        """Ids (uint16) of the first ``max_length - 1`` bytes of ``data``, then EOS."""
        body = np.frombuffer(data, dtype=np.uint8, count=min(len(data), self.max_length - 1))
        return np.append(body.astype(np.uint16) + len(SPECIAL_TOKENS), np.uint16(EOS_ID))


class CharTokenizer:
    """S4 character level: a fixed character vocabulary after the specials; unknown characters -> <unk>.

    ``encode`` decodes UTF-8 strictly (a ``UnicodeDecodeError`` names the byte), keeps the first
    ``max_length - 1`` characters and appends EOS.
    """

    level = "char"

    def __init__(self, characters: Sequence[str], max_length: int) -> None:
        if any(len(character) != 1 for character in characters) or len(set(characters)) != len(characters):
            raise ValueError("a character vocabulary must list distinct single characters")
        self.max_length = _check_max_length(max_length)
        self.vocab = SPECIAL_TOKENS + tuple(characters)
        # Lookup by binary search over the sorted code points, ending in a sentinel above every code point.
        points = np.array([ord(character) for character in characters], dtype=np.uint32)
        order = np.argsort(points)
        self._sorted_points = np.append(points[order], np.uint32(_NO_CODE_POINT))
        self._sorted_ids = np.append(order + len(SPECIAL_TOKENS), UNK_ID).astype(np.uint32)

    @classmethod
    def from_documents(cls, documents: Iterable[bytes], *, min_freq: int, max_length: int) -> CharTokenizer:
        """Vocabulary of the characters seen at least ``min_freq`` times in the (truncated) documents,
        most frequent first, ties by code point."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        text = "".join(document.decode("utf-8")[: max_length - 1] for document in documents)
        counts = np.bincount(code_points(text))
        kept = np.flatnonzero(counts >= min_freq)
        ordered = kept[np.lexsort((kept, -counts[kept]))]
        return cls([chr(point) for point in ordered], max_length)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, data: bytes) -> np.ndarray:
        """Ids (uint32) of the first ``max_length - 1`` characters of UTF-8 ``data``, then EOS."""
        points = code_points(data.decode("utf-8")[: self.max_length - 1])
        slots = np.searchsorted(self._sorted_points, points)
        ids = np.where(self._sorted_points[slots] == points, self._sorted_ids[slots], np.uint32(UNK_ID))
        return np.append(ids, np.uint32(EOS_ID))


Tokenizer = ByteTokenizer | CharTokenizer


def code_points(text: str) -> np.ndarray:
    """Unicode code points (uint32) of ``text``."""
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


def _check_max_length(max_length: int) -> int:
    if max_length < 2:
        raise ValueError(f"max_length counts EOS and must be at least 2, got {max_length}")
    return max_length


def build_tokenizer(level: str, *, max_length: int, min_freq: int, train_documents: Iterable[bytes]) -> Tokenizer:
    """The tokeniser of ``level``; the character vocabulary is counted on ``train_documents``."""
    if level == "byte":
        return ByteTokenizer(max_length)
    if level == "char":
        return CharTokenizer.from_documents(train_documents, min_freq=min_freq, max_length=max_length)
    raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def save_tokenizer(directory: str | Path, tokenizer: Tokenizer, examples: dict[str, int]) -> None:
    """Record the vocabulary (``vocab.json``) and its fingerprint with the split sizes (``contents.json``)."""
    directory = Path(directory)
    vocabulary = {"level": tokenizer.level, "tokens": list(tokenizer.vocab)}
    (directory / VOCAB_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    contents = {"vocab_sha256": vocabulary_fingerprint(vocabulary), "examples": examples}
    (directory / CONTENTS_FILE).write_text(json.dumps(contents, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_tokenizer(directory: str | Path, *, level: str, max_length: int) -> Tokenizer:
    """The tokeniser recorded in a cache folder; ``CacheMismatchError`` when ``vocab.json`` disagrees with it."""
    directory = Path(directory)
    try:
        vocabulary = json.loads((directory / VOCAB_FILE).read_text(encoding="utf-8"))
        recorded = json.loads((directory / CONTENTS_FILE).read_text(encoding="utf-8"))["vocab_sha256"]
    except (OSError, ValueError, KeyError) as error:
        raise CacheMismatchError(directory, [f"{VOCAB_FILE} or {CONTENTS_FILE} unreadable ({error})"]) from None
    found = vocabulary_fingerprint(vocabulary)
    if found != recorded:
        raise CacheMismatchError(
            directory, [f"{VOCAB_FILE} has sha256 {found[:12]}..., the cached tokens were built with {recorded[:12]}..."]
        )
    tokens = vocabulary.get("tokens", [])
    expected = ByteTokenizer.vocab if level == "byte" else SPECIAL_TOKENS
    if vocabulary.get("level") != level or tuple(tokens[: len(expected)]) != expected or (
        level == "byte" and len(tokens) != len(expected)
    ):
        raise CacheMismatchError(directory, [f"{VOCAB_FILE} is not a {level}-level vocabulary"])
    if level == "byte":
        return ByteTokenizer(max_length)
    return CharTokenizer(tokens[len(SPECIAL_TOKENS) :], max_length)


def vocabulary_fingerprint(vocabulary: dict[str, Any]) -> str:
    """sha256 of a vocabulary record as canonical JSON."""
    return hashlib.sha256(json.dumps(vocabulary, sort_keys=True).encode("utf-8")).hexdigest()


def undecodable(path: str | Path, line: int, error: UnicodeDecodeError, what: str = "text") -> DataFormatError:
    """The format error for ``what`` that is not valid UTF-8 (character-level tokenisation needs UTF-8)."""
    return DataFormatError(
        path, line, f"{what} is not valid UTF-8 ({error.reason} at byte {error.start}); use level=byte for raw bytes"
    )


# --------------------------------------------------------------------------- reading IMDB


@dataclass(frozen=True)
class Reviews:
    """The reviews of one IMDB split, ordered by label then id: member names, raw bytes and labels."""

    names: list[str]
    texts: list[bytes]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def locate_source(candidates: Sequence[str | Path]) -> Path:
    """The first candidate (an archive or an unpacked folder) that exists; else ``DataNotFoundError``."""
    paths = [Path(candidate) for candidate in candidates]
    if not paths:
        raise ValueError("archives must list at least one candidate path (an aclImdb archive or folder)")
    for path in paths:
        if path.exists():
            return path
    raise DataNotFoundError(paths[0], MAKE_TARGET, detail="looked for " + ", ".join(str(path) for path in paths))


def read_imdb(source: str | Path) -> dict[str, Reviews]:
    """The train and test reviews of an IMDB archive or folder (``aclImdb/`` itself or its parent)."""
    source = Path(source)
    found: dict[str, list[tuple[int, int, str, bytes]]] = {split: [] for split in IMDB_SPLITS}
    for name, data in _iter_review_files(source):
        match = REVIEW_NAME.fullmatch(name)
        if match:
            split, sentiment, review_id, _rating = match.groups()
            found[split].append((SENTIMENT_LABELS[sentiment], int(review_id), name, data))
    reviews = {}
    for split, items in found.items():
        if not items:
            raise DataNotFoundError(source, MAKE_TARGET, detail=f"it holds no review aclImdb/{split}/{{pos,neg}}/<id>_<rating>.txt")
        items.sort()
        reviews[split] = Reviews(
            names=[item[2] for item in items],
            texts=[item[3] for item in items],
            labels=np.array([item[0] for item in items], dtype=np.int64),
        )
    return reviews


def _iter_review_files(source: Path) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of every candidate review file; names read ``aclImdb/<split>/<label>/<file>``."""
    if source.is_dir():
        root = source / "aclImdb" if (source / "aclImdb").is_dir() else source
        for path in sorted(root.glob("*/*/*.txt")):
            yield f"aclImdb/{path.relative_to(root).as_posix()}", path.read_bytes()
        return
    with reading_archive(source):
        for name, stream in iter_archive_files(source, members=lambda name: REVIEW_NAME.fullmatch(name) is not None):
            yield name, stream.read()


# --------------------------------------------------------------------------- data module


class TextDataModule(ClassificationDataModule):
    """LRA Text: 2 classes, token inputs, 25k train / 25k test reviews (test doubles as validation).

    ``archives`` lists candidate sources (tarballs or unpacked folders), the first that exists is
    read; by default ``<data_dir>/downloads/aclImdb_v1.tar.gz``, where ``download()`` puts it.
    ``val_split="test"`` validates on the test split itself (LRA, S4); ``"train"`` holds out
    ``val_fraction`` of train (seeded by ``split_seed``). ``n_train``/``n_val``/``n_test`` take
    seeded class-balanced subsets (None: all). The character vocabulary is counted on the
    training reviews in use. Training batches are shuffled in an order fixed by (seed, epoch).
    """

    task = "text"
    make_target = MAKE_TARGET
    n_classes = 2
    input_kind = "tokens"

    def __init__(
        self,
        *,
        data_dir: str | Path,
        archives: Sequence[str | Path] | None = None,
        level: str = "byte",
        min_freq: int = 15,
        max_length: int = 4096,
        val_split: str = "test",
        val_fraction: float = 0.1,
        split_seed: int = 42,
        n_train: int | None = None,
        n_val: int | None = None,
        n_test: int | None = None,
        subset_seed: int = 0,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if val_split not in VAL_SPLITS:
            raise ValueError(f"val_split must be one of {VAL_SPLITS}, got {val_split!r}")
        if val_split == "test" and n_val is not None:
            raise ValueError("n_val applies to val_split='train' only; with val_split='test' validation is the test split")
        _check_max_length(max_length)
        self._set_loading(data_dir, batch_size, eval_batch_size, num_workers)
        self.archives = [Path(a) for a in archives] if archives else [self.downloads_dir() / SOURCES["imdb"].filename]
        self.level = level
        self.min_freq = min_freq
        self.max_length = max_length
        self.val_split = val_split
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.subset_sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.subset_seed = subset_seed
        self.vocab_size = len(ByteTokenizer.vocab) if level == "byte" else None  # char: known once the cache exists

    # ------------------------------------------------------------------ locations and settings

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the tokenised cache depends on (the source included)."""
        source = locate_source(self.archives)
        settings: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "source": {"path": str(source.resolve()), "bytes": source.stat().st_size if source.is_file() else None},
            "level": self.level,
            "max_length": self.max_length,
            "val_split": self.val_split,
            "subsets": {**self.subset_sizes, "seed": self.subset_seed},
        }
        if self.level == "char":
            settings["min_freq"] = self.min_freq
        if self.val_split == "train":
            settings["holdout"] = {"fraction": self.val_fraction, "seed": self.split_seed}
        return settings

    def stored_splits(self) -> tuple[str, ...]:
        """Splits written to the cache: validation only when held out of train (else it is the test split)."""
        return SPLITS if self.val_split == "train" else IMDB_SPLITS

    # ------------------------------------------------------------------ Lightning hooks

    def download(self) -> Path:
        """Fetch the official IMDB tarball into ``<data_dir>/downloads/`` (network; ``make data-text`` only)
        unless one of ``archives`` exists already; return the source to read."""
        try:
            return locate_source(self.archives)
        except DataNotFoundError:
            return fetch_source("imdb", self.downloads_dir())

    def prepare_data(self) -> None:
        """Tokenise the reviews into the cache unless it is complete; learn the vocabulary size."""
        directory = ensure_built(self.cache_dir(), self.cache_settings(), self._write_cache)
        self.vocab_size = load_tokenizer(directory, level=self.level, max_length=self.max_length).vocab_size

    def setup(self, stage: str | None = None) -> None:
        """Memory-map the cached splits (built by ``prepare_data``) after checking settings and vocabulary."""
        directory = self.built_cache_dir("tokenised cache")
        self.vocab_size = load_tokenizer(directory, level=self.level, max_length=self.max_length).vocab_size
        self.splits = {split: load_token_split(directory / split) for split in self.stored_splits()}
        self.splits.setdefault("val", self.splits["test"])

    def class_counts(self, split: str) -> np.ndarray:
        """Reviews per class (neg, pos) in ``split``."""
        return np.bincount(self._split(split).labels, minlength=self.n_classes)

    # ------------------------------------------------------------------ helpers

    def _write_cache(self, target: Path) -> None:
        started = time.perf_counter()
        source = locate_source(self.archives)
        reviews = read_imdb(source)
        selected = self._select(reviews)
        train_reviews, train_indices = selected["train"]
        tokenizer = build_tokenizer(
            self.level,
            max_length=self.max_length,
            min_freq=self.min_freq,
            train_documents=(_checked_utf8(source, train_reviews, i) for i in train_indices),
        )
        for split, (split_reviews, indices) in selected.items():
            sequences = [_encode_review(tokenizer, source, split_reviews, i) for i in indices]
            save_token_split(target / split, sequences, split_reviews.labels[indices], vocab_size=tokenizer.vocab_size)
        save_tokenizer(target, tokenizer, {split: len(indices) for split, (_, indices) in selected.items()})
        log.info("text: tokenised %s in %.1f s (%s level, vocabulary %d)", source, time.perf_counter() - started,
                 self.level, tokenizer.vocab_size)

    def _select(self, reviews: dict[str, Reviews]) -> dict[str, tuple[Reviews, np.ndarray]]:
        """Per stored split: the IMDB split it comes from and the indices of its reviews."""
        train, test = reviews["train"], reviews["test"]
        if self.val_split == "train":
            kept, held_out = holdout_split(len(train), self.val_fraction, self.split_seed)
            chosen = {"train": (train, kept), "val": (train, held_out), "test": (test, np.arange(len(test)))}
        else:
            chosen = {"train": (train, np.arange(len(train))), "test": (test, np.arange(len(test)))}
        return {
            split: (source, indices[balanced_subset(source.labels[indices], self.subset_sizes[split],
                                                    self.subset_seed, self.n_classes, name=f"the {split} split")])
            for split, (source, indices) in chosen.items()
        }

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        return make_loader(TokenDataset(self._split(split)), batch_size, shuffle,
                           collate, self.num_workers)


def _checked_utf8(source: Path, reviews: Reviews, index: int) -> bytes:
    """Review ``index`` after checking that it decodes as UTF-8 (else a format error naming it)."""
    data = reviews.texts[index]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _undecodable_review(source, reviews, index, error) from None
    return data


def _encode_review(tokenizer: Tokenizer, source: Path, reviews: Reviews, index: int) -> np.ndarray:
    """Token ids of review ``index``; a review that is not UTF-8 (character level) names its file and line."""
    data = reviews.texts[index]
    try:
        return tokenizer.encode(data)
    except UnicodeDecodeError as error:
        raise _undecodable_review(source, reviews, index, error) from None


def _undecodable_review(source: Path, reviews: Reviews, index: int, error: UnicodeDecodeError) -> DataFormatError:
    line = reviews.texts[index][: error.start].count(b"\n") + 1
    return undecodable(source / reviews.names[index], line, error, "review")
