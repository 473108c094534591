"""Token ids shared by every token task, and the byte and character tokenisers of LRA Text and Retrieval.

Every token dataset shares the special ids ``<pad>`` = 0, ``<unk>`` = 1, ``<eos>`` = 2. Byte level
(LRA, Tay et al. 2020): each UTF-8 byte is one token, id = byte + 3 (vocabulary 259). Character level
(the S4 code base's IMDB): the characters seen at least ``min_freq`` times in the training documents
after the specials, most frequent first (ties by code point), the rest ``<unk>``. Both truncate a
document to ``max_length - 1`` tokens and append EOS. Ids are stored in the narrowest of int16 and
int32 that holds the vocabulary (``token_dtype``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lra_snn.data.errors import DataFormatError

SPECIAL_TOKENS = ("<pad>", "<unk>", "<eos>")
PAD_ID, UNK_ID, EOS_ID = 0, 1, 2
LEVELS = ("byte", "char")
_NO_CODE_POINT = 0xFFFFFFFF  # above every Unicode code point (the largest is 0x10FFFF)
_COUNT_BATCH = 1000  # documents whose characters are counted together


def token_dtype(vocab_size: int) -> np.dtype:
    """The narrowest of int16 and int32 that holds every id below ``vocab_size``."""
    for dtype in (np.int16, np.int32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise ValueError(f"vocab_size {vocab_size} does not fit in 32 bits")


def token_feature(vocab_size: int) -> str:
    """The ``datasets`` value type of token ids below ``vocab_size`` (``"int16"`` or ``"int32"``)."""
    return token_dtype(vocab_size).name


def check_max_length(max_length: int) -> int:
    """``max_length`` (tokens per document, EOS included) if it leaves room for one token and EOS."""
    if max_length < 2:
        raise ValueError(f"max_length counts EOS and must be at least 2, got {max_length}")
    return max_length


def code_points(text: str) -> np.ndarray:
    """Unicode code points (uint32) of ``text``."""
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


class ByteTokenizer:
    """LRA byte level: each UTF-8 byte is one token, id = byte + 3; truncate to max_length - 1, append EOS."""

    level = "byte"
    vocab = SPECIAL_TOKENS + tuple(f"<0x{value:02X}>" for value in range(256))

    def __init__(self, max_length: int) -> None:
        self.max_length = check_max_length(max_length)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, data: bytes) -> np.ndarray:
        """Ids (int16) of the first ``max_length - 1`` bytes of ``data``, then EOS."""
        return self.encode_batch([data])[0]

    def encode_batch(self, documents: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """``encode`` of every document, back to back: ``(ids, offsets)`` (``append_eos``), in whole-batch
        numpy operations."""
        kept = [document[: self.max_length - 1] for document in documents]
        lengths = np.fromiter(map(len, kept), dtype=np.int64, count=len(kept))
        body = np.frombuffer(b"".join(kept), dtype=np.uint8).astype(np.int16) + len(SPECIAL_TOKENS)
        return append_eos(body, lengths, EOS_ID)


class CharTokenizer:
    """Character level: a fixed character vocabulary after the specials; unknown characters -> <unk>.

    ``encode`` decodes UTF-8 strictly (a ``UnicodeDecodeError`` names the byte), keeps the first
    ``max_length - 1`` characters and appends EOS.
    """

    level = "char"

    def __init__(self, characters: Sequence[str], max_length: int) -> None:
        if any(len(character) != 1 for character in characters) or len(set(characters)) != len(characters):
            raise ValueError("a character vocabulary must list distinct single characters")
        self.max_length = check_max_length(max_length)
        self.vocab = SPECIAL_TOKENS + tuple(characters)
        # Lookup by binary search over the sorted code points, ending in a sentinel above every code point.
        points = np.array([ord(character) for character in characters], dtype=np.uint32)
        order = np.argsort(points)
        self._sorted_points = np.append(points[order], np.uint32(_NO_CODE_POINT))
        self._sorted_ids = np.append(order + len(SPECIAL_TOKENS), UNK_ID).astype(token_dtype(self.vocab_size))

    @classmethod
    def from_documents(cls, documents: Iterable[bytes], *, min_freq: int, max_length: int) -> CharTokenizer:
        """Vocabulary of the characters seen at least ``min_freq`` times in the (truncated) documents,
        most frequent first, ties by code point."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        counts = np.zeros(0, dtype=np.int64)
        pending: list[str] = []
        for document in documents:
            pending.append(document.decode("utf-8")[: max_length - 1])
            if len(pending) == _COUNT_BATCH:
                counts, pending = _add_counts(counts, pending), []
        counts = _add_counts(counts, pending)
        kept = np.flatnonzero(counts >= min_freq)
        ordered = kept[np.lexsort((kept, -counts[kept]))]
        return cls([chr(point) for point in ordered], max_length)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, data: bytes) -> np.ndarray:
        """Ids of the first ``max_length - 1`` characters of UTF-8 ``data``, then EOS."""
        return self.encode_batch([data])[0]

    def encode_batch(self, documents: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """``encode`` of every document, back to back: ``(ids, offsets)`` (``append_eos``); the characters
        of the whole batch are looked up at once. A document that is not UTF-8 raises
        ``UnicodeDecodeError`` (``first_undecodable`` finds it)."""
        texts = [document.decode("utf-8")[: self.max_length - 1] for document in documents]
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        points = code_points("".join(texts))
        slots = np.searchsorted(self._sorted_points, points)
        body = np.where(self._sorted_points[slots] == points, self._sorted_ids[slots], UNK_ID)
        return append_eos(body.astype(self._sorted_ids.dtype), lengths, EOS_ID)


Tokenizer = ByteTokenizer | CharTokenizer


def append_eos(body: np.ndarray, lengths: np.ndarray, eos_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Documents whose ids lie back to back in ``body`` (``lengths[i]`` ids each), each followed by
    ``eos_id``: ``(ids, offsets)``, document ``i`` being ``ids[offsets[i] : offsets[i + 1]]``."""
    ends = np.cumsum(lengths + 1)
    ids = np.full(int(ends[-1]) if len(ends) else 0, eos_id, dtype=body.dtype)
    is_token = np.ones(len(ids), dtype=bool)
    is_token[ends - 1] = False
    ids[is_token] = body
    return ids, np.concatenate([np.zeros(1, dtype=np.int64), ends])


def first_undecodable(documents: Iterable[bytes]) -> tuple[int, UnicodeDecodeError] | None:
    """The index of the first document that is not UTF-8, with its error (None if every one is)."""
    for index, document in enumerate(documents):
        try:
            document.decode("utf-8")
        except UnicodeDecodeError as error:
            return index, error
    return None


def _add_counts(counts: np.ndarray, texts: list[str]) -> np.ndarray:
    """``counts`` (per code point) plus the code points of ``texts``."""
    found = np.bincount(code_points("".join(texts)))
    if len(found) > len(counts):
        counts = np.pad(counts, (0, len(found) - len(counts)))
    counts[: len(found)] += found
    return counts


def build_tokenizer(level: str, *, max_length: int, min_freq: int, train_documents: Iterable[bytes]) -> Tokenizer:
    """The tokeniser of ``level``; the character vocabulary is counted on ``train_documents``."""
    if level == "byte":
        return ByteTokenizer(max_length)
    if level == "char":
        return CharTokenizer.from_documents(train_documents, min_freq=min_freq, max_length=max_length)
    raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def tokenizer_record(tokenizer: Tokenizer) -> dict[str, Any]:
    """The tokeniser as JSON (kept in a cache's ``meta.json``): its level and vocabulary."""
    return {"level": tokenizer.level, "tokens": list(tokenizer.vocab)}


def tokenizer_from_record(record: dict[str, Any], max_length: int) -> Tokenizer:
    """The tokeniser written by ``tokenizer_record``."""
    if record["level"] == "byte":
        return ByteTokenizer(max_length)
    return CharTokenizer(record["tokens"][len(SPECIAL_TOKENS) :], max_length)


def undecodable(path: str | Path, line: int, error: UnicodeDecodeError, what: str = "text") -> DataFormatError:
    """The format error for ``what`` that is not valid UTF-8 (character-level tokenisation needs UTF-8)."""
    return DataFormatError(
        path, line, f"{what} is not valid UTF-8 ({error.reason} at byte {error.start}); use level=byte for raw bytes"
    )
