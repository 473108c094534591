"""WikiText-103 word-level language modelling (Merity et al. 2016): tokenise, then group into fixed windows.

Tokenising: whitespace tokens, case kept, ``<eos>`` after every line (empty lines included), so the
published token counts come out exactly (valid 217,646, test 245,569). The vocabulary is every
token type of the train split, ids sorted by train count (most frequent first, ties by first
occurrence), so the adaptive softmax's head cluster holds the frequent words (vocabulary 267,735
on WikiText-103, ``<unk>`` and ``<eos>`` included). A valid/test token never seen in train maps to
``<unk>`` and is counted (the released files are already ``<unk>``-ed, so the count should be 0).
A batched ``map`` turns each line (``lra_snn.data.wikitext103.source``) into ``ids`` (int32);
the cache (``lra_snn.data.store``) holds them, ``vocab.txt`` (token and train count per line) and
the token and unseen counts per split.

Grouping: a split's ids, line after line, are one stream of N tokens, cut into ``rows``
contiguous rows (lengths differ by at most one) read as consecutive windows of ``max_length``
steps; targets are the stream itself and inputs the stream shifted right by one, preceded by one
``<eos>`` (the end of the line before the file), so every token is a target exactly once. The last
window of a row may be partial: its true length is in ``lengths`` and its unused target slots hold
``IGNORE_INDEX``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lra_snn.data import store, views
from lra_snn.data.base import CachedDataModule
from lra_snn.data.download import extract as extract_archive
from lra_snn.data.download import fetch_hub, fetch_source, hub_folder, saved_hub
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.tokenizers import append_eos
from lra_snn.data.views import Ragged

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset
from lra_snn.data.wikitext103.source import (
    ARCHIVE_FOLDER,
    HUB_CONFIG,
    HUB_LAYOUT,
    HUB_PATH,
    MAKE_TARGET,
    SPLITS,
    hub_dataset,
    locate_source,
    release_dataset,
)

TASK = "wikitext103"
SOURCES = ("release", "hub")
UNK, EOS = "<unk>", "<eos>"
IGNORE_INDEX = -100  # target of a padded slot (torch's cross-entropy convention)
VOCAB_FILE = "vocab.txt"
CACHE_FORMAT = 2  # bump when the cached files change meaning (2: datasets store)
COLUMNS: dict[str, store.Column] = {"ids": ["int32"], "unseen": "int32"}


# --------------------------------------------------------------------------- vocabulary and ids


def count_tokens(lines: Dataset) -> Counter:
    """How often every token occurs in a split's lines (``<eos>`` once per line), in order of first occurrence."""
    counts: Counter = Counter()
    for batch in lines.with_format("arrow").iter(batch_size=10_000):
        counts.update(chain.from_iterable([*line.split(), EOS] for line in batch.column("text").to_pylist()))
    return counts


class Vocabulary:
    """Token strings with their train counts; id = position. Holds ``<unk>`` and ``<eos>``."""

    def __init__(self, tokens: list[str], counts: list[int]) -> None:
        if len(tokens) != len(counts):
            raise ValueError(f"{len(tokens)} tokens but {len(counts)} counts")
        self.tokens = list(tokens)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        missing = [special for special in (UNK, EOS) if special not in self.index]
        if missing:
            raise ValueError(f"vocabulary lacks {missing}")
        self.unk_id = self.index[UNK]
        self.eos_id = self.index[EOS]

    @classmethod
    def from_counts(cls, counts: Counter) -> Vocabulary:
        """Ids by descending count, ties in order of first occurrence; an absent ``<unk>``/``<eos>`` is added last."""
        ranked = sorted(counts.items(), key=lambda item: -item[1])  # stable: ties keep first-occurrence order
        ranked += [(special, 0) for special in (UNK, EOS) if special not in counts]
        return cls([token for token, _ in ranked], [count for _, count in ranked])

    def __len__(self) -> int:
        return len(self.tokens)

    def save(self, path: str | Path) -> None:
        """Write ``token<TAB>count`` lines in id order."""
        lines = (f"{token}\t{count}\n" for token, count in zip(self.tokens, self.counts.tolist()))
        Path(path).write_text("".join(lines), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        """Read a file written by ``save``."""
        tokens, counts = [], []
        for line_number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
            fields = line.split("\t")
            if len(fields) != 2 or not fields[1].isdigit():
                raise DataFormatError(path, line_number, f"expected 'token<TAB>count', found {line!r}")
            tokens.append(fields[0])
            counts.append(int(fields[1]))
        return cls(tokens, counts)


def encode_lines(batch: dict[str, list], *, index: dict[str, int], unk_id: int, eos_id: int) -> pa.Table:
    """``{"ids", "unseen"}`` of a batch of lines, as one Arrow table: each line's token ids then ``<eos>``;
    tokens absent from ``index`` become ``unk_id`` and are counted in ``unseen``. The words of the whole
    batch are looked up in one pass and the ids laid out with numpy."""
    import pyarrow as pa

    lines = [line.split() for line in batch["text"]]
    words = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    found = np.fromiter(map(index.get, chain.from_iterable(lines), repeat(-1)), dtype=np.int64, count=int(words.sum()))
    missing = found < 0
    ids, offsets = append_eos(np.where(missing, unk_id, found).astype(np.int32), words, eos_id)
    unseen = np.bincount(np.repeat(np.arange(len(lines)), words)[missing], minlength=len(lines))
    return pa.table({"ids": store.list_array(ids, offsets), "unseen": unseen.astype(np.int32)})


# --------------------------------------------------------------------------- streams and windows


class Stream(Protocol):
    """Token ids read by position: a numpy array, or a ``ChunkedStream``."""

    def __len__(self) -> int: ...

    def __getitem__(self, positions: np.ndarray) -> np.ndarray: ...


class ChunkedStream:
    """A split's token ids, line after line, as one stream over the stored chunks (numpy views, no copy)."""

    def __init__(self, parts: Sequence[np.ndarray]) -> None:
        self.parts = [part for part in parts if len(part)]
        self.starts = np.concatenate([[0], np.cumsum([len(part) for part in self.parts])]).astype(np.int64)

    @classmethod
    def from_rows(cls, rows: Ragged) -> ChunkedStream:
        """The rows of ``rows`` (lines of ids) concatenated: each chunk's values between its first and last
        offset; a stream of at most ``CONTIGUOUS_BYTES`` is copied into one array (one gather per window)."""
        parts = [values[offsets[0] : offsets[-1]] for offsets, values in zip(rows.offsets, rows.values)]
        if len(parts) > 1 and sum(part.nbytes for part in parts) <= views.CONTIGUOUS_BYTES:
            parts = [np.concatenate(parts)]
        return cls(parts)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, positions: np.ndarray) -> np.ndarray:
        """The ids at ``positions`` (any shape, each in [0, len))."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(self.parts) == 1:
            return self.parts[0][positions]
        chunks = np.searchsorted(self.starts, positions, side="right") - 1
        out = np.empty(positions.shape, dtype=self.parts[0].dtype)
        for chunk in np.unique(chunks).tolist():
            chosen = chunks == chunk
            out[chosen] = self.parts[chunk][positions[chosen] - self.starts[chunk]]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int32)
        return whole if dtype is None else whole.astype(dtype)

    def prefix(self, n_tokens: int) -> ChunkedStream:
        """The first ``n_tokens`` ids (all of them if fewer)."""
        parts, left = [], n_tokens
        for part in self.parts:
            if left <= 0:
                break
            parts.append(part[:left])
            left -= len(part)
        return ChunkedStream(parts)


def row_bounds(n_tokens: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and length of ``rows`` contiguous rows covering ``n_tokens`` (the first ``n % rows`` one longer)."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if n_tokens < rows:
        raise ValueError(f"a stream of {n_tokens} tokens cannot fill {rows} rows; lower global_batch")
    base, extra = divmod(n_tokens, rows)
    lengths = np.full(rows, base, dtype=np.int64)
    lengths[:extra] += 1
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return starts, lengths


class StreamWindows(IterableDataset):
    """Consecutive windows of a token stream cut into rows; every item is one batch.

    Items: ``inputs`` (R, L) int64 (the previous token; ``context_id`` before the stream's first
    token and in padded slots), ``targets`` (R, L) int64 (``IGNORE_INDEX`` in padded slots) and
    ``lengths`` (R,) (L except in a row's last window). With ``world_size`` > 1 a rank serves its
    share of the rows (``rows / world_size`` each), every rank the same number of windows. Data
    loader workers take every ``num_workers``-th window, which the loader interleaves back in order.
    """

    def __init__(
        self, stream: Stream, rows: int, max_length: int, context_id: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        if rows % world_size:
            raise ValueError(
                f"global_batch={rows} rows cannot be shared by {world_size} devices; "
                f"make it a multiple of the device count"
            )
        starts, lengths = row_bounds(len(stream), rows)
        share = rows // world_size
        self.stream = stream
        self.max_length = max_length
        self.context_id = context_id
        self.n_windows = math.ceil(int(lengths.max()) / max_length)
        self.row_starts = starts[rank * share : (rank + 1) * share]
        self.row_lengths = lengths[rank * share : (rank + 1) * share]

    def __len__(self) -> int:
        return self.n_windows

    def window(self, index: int) -> dict[str, Tensor]:
        """The batch of window ``index``."""
        steps = index * self.max_length + np.arange(self.max_length)
        filled = steps[None, :] < self.row_lengths[:, None]
        positions = np.where(filled, self.row_starts[:, None] + steps[None, :], 0)
        targets = np.where(filled, self.stream[positions], IGNORE_INDEX)
        previous = positions - 1
        inputs = np.where(filled & (previous >= 0), self.stream[np.maximum(previous, 0)], self.context_id)
        return {
            "inputs": torch.from_numpy(inputs.astype(np.int64)),
            "targets": torch.from_numpy(targets.astype(np.int64)),
            "lengths": torch.from_numpy(filled.sum(1)),
        }

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        worker = get_worker_info()
        first, step = (0, 1) if worker is None else (worker.id, worker.num_workers)
        for index in range(first, self.n_windows, step):
            yield self.window(index)


# --------------------------------------------------------------------------- data module


class WikiTextDataModule(CachedDataModule):
    """WikiText-103 (or a file set in its format): next-token batches of ``global_batch`` rows.

    ``source="release"``: ``source_dir`` holds ``train_file``, ``valid_file`` and ``test_file``
    (names relative to it, or absolute), directly or in the archive's ``wikitext-103/`` subfolder.
    ``source="hub"``: the Hub dataset ``hub_path`` (config ``hub_config``), kept under
    ``<data_dir>/downloads/hub/``. ``max_length`` is the context length. ``max_train_tokens`` /
    ``max_eval_tokens`` serve only the first tokens of the train / valid and test streams (smaller
    profiles); the cache always holds whole splits. Train windows are served in stream order every
    epoch; ``num_proc`` processes tokenise.
    """

    task = TASK
    make_target = MAKE_TARGET
    val_split = "valid"

    def __init__(
        self,
        *,
        data_dir: str | Path,
        source: str = "release",
        source_dir: str | Path | None = None,
        hub_path: str = HUB_PATH,
        hub_config: str = HUB_CONFIG,
        train_file: str = "wiki.train.tokens",
        valid_file: str = "wiki.valid.tokens",
        test_file: str = "wiki.test.tokens",
        max_length: int = 8192,
        global_batch: int = 8,
        eval_global_batch: int | None = None,
        max_train_tokens: int | None = None,
        max_eval_tokens: int | None = None,
        num_workers: int = 0,
        num_proc: int = 1,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        for name, value in (
            ("max_length", max_length),
            ("global_batch", global_batch),
            ("eval_global_batch", eval_global_batch),
            ("max_train_tokens", max_train_tokens),
            ("max_eval_tokens", max_eval_tokens),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        self._set_storage(data_dir, num_workers, num_proc)
        self.source = source
        self.source_dir = Path(source_dir) if source_dir is not None else self.downloads_dir() / ARCHIVE_FOLDER
        self.hub_path = hub_path
        self.hub_config = hub_config
        self.files = {"train": train_file, "valid": valid_file, "test": test_file}
        self.max_length = max_length
        self.global_batch = global_batch
        self.eval_global_batch = eval_global_batch or global_batch
        self.token_limits = {"train": max_train_tokens, "valid": max_eval_tokens, "test": max_eval_tokens}
        self.stats: dict[str, Any] = {}
        self.vocabulary: Vocabulary | None = None
        self.streams: dict[str, ChunkedStream] = {}

    # ------------------------------------------------------------------ sources and settings

    def source_folder(self) -> Path:
        """Folder holding the three split files (``DataNotFoundError`` naming the make target if absent)."""
        return locate_source(self.source_dir, self.files)

    def hub_snapshot(self) -> Path:
        """Where ``download()`` keeps the Hub dataset."""
        return hub_folder(self.downloads_dir(), self.hub_path, self.hub_config)

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the cache depends on: the format and the source files by content."""
        if self.source == "hub":
            snapshot = saved_hub(self.hub_snapshot(), self.hub_path, self.hub_config, MAKE_TARGET)
            return {"format": CACHE_FORMAT, "source": {"kind": "hub", "sha256": self.digest(snapshot)}}
        folder = self.source_folder()
        return {
            "format": CACHE_FORMAT,
            "source": {
                "kind": "release",
                "files": {split: self.digest(folder / name) for split, name in self.files.items()},
            },
        }

    @property
    def vocab_size(self) -> int:
        if "vocab_size" not in self.stats:
            raise RuntimeError("WikiTextDataModule: call prepare_data() before asking for the vocabulary size")
        return int(self.stats["vocab_size"])

    # ------------------------------------------------------------------ downloading and building

    def download(self) -> Path:
        """Fetch the source unless present (network; ``make data-wikitext103`` only). Release:
        wikitext-103-v1.zip, unpacked into ``source_dir``; Hub: ``hub_path`` into ``hub_snapshot()``."""
        if self.source == "hub":
            return fetch_hub(self.hub_path, self.hub_config, self.hub_snapshot(), HUB_LAYOUT)
        try:
            return self.source_folder()
        except DataNotFoundError:
            archive = fetch_source(TASK, self.downloads_dir())
        extract_archive(archive, self.source_dir, members=lambda name: name.endswith(".tokens"))
        return self.source_folder()

    def build(self, staging: Path) -> tuple[Mapping[str, Dataset], dict[str, Any]]:
        """Count the train vocabulary, then map every split's lines to ids."""
        if self.source == "hub":
            lines = hub_dataset(saved_hub(self.hub_snapshot(), self.hub_path, self.hub_config, MAKE_TARGET))
        else:
            lines = release_dataset(self.source_folder(), self.files)
        vocabulary = Vocabulary.from_counts(count_tokens(lines["train"]))
        vocabulary.save(staging / VOCAB_FILE)
        stats: dict[str, Any] = {"vocab_size": len(vocabulary), "eos_id": vocabulary.eos_id, "tokens": {}, "unseen": {}}
        splits = {}
        for split in SPLITS:
            encoded = store.map_batches(
                lines[split],
                encode_lines,
                COLUMNS,
                staging,
                f"{split}-ids",
                self.num_proc,
                index=vocabulary.index,
                unk_id=vocabulary.unk_id,
                eos_id=vocabulary.eos_id,
            )
            stats["tokens"][split] = int(np.sum(Ragged.from_arrow(encoded.data.column("ids")).lengths()))
            stats["unseen"][split] = int(np.sum(store.column(encoded, "unseen")))
            splits[split] = encoded.remove_columns(["unseen"])
        return splits, stats

    # ------------------------------------------------------------------ Lightning hooks

    def _learn(self, extra: dict[str, Any]) -> None:
        self.stats = extra

    def _open(self, stored: store.Stored) -> None:
        self.vocabulary = Vocabulary.load(stored.directory / VOCAB_FILE)
        self.streams = {}
        for split, table in stored.tables.items():
            stream = ChunkedStream.from_rows(Ragged.from_arrow(table.column("ids")))
            limit = self.token_limits[split]
            self.streams[split] = stream if limit is None else stream.prefix(limit)

    def windows(self, split: str, rows: int | None = None, rank: int = 0, world_size: int = 1) -> StreamWindows:
        """The windows of ``split`` (default rows: ``global_batch`` for train, ``eval_global_batch`` otherwise)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self._require_setup()
        if rows is None:
            rows = self.global_batch if split == "train" else self.eval_global_batch
        return StreamWindows(self.streams[split], rows, self.max_length, int(self.stats["eos_id"]), rank, world_size)

    def _loader(self, split: str, training: bool) -> DataLoader:
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        rows = self.global_batch if training else self.eval_global_batch
        return DataLoader(
            self.windows(split, rows, rank, world_size),
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    # ------------------------------------------------------------------ what the model and the records need

    def encoder_kwargs(self) -> dict[str, int]:
        """The zoo encoder embeds ``vocab_size`` token ids."""
        return {"vocab_size": self.vocab_size}

    def task_kwargs(self) -> dict[str, int]:
        """The language-model head predicts one of ``vocab_size`` tokens."""
        return {"vocab_size": self.vocab_size}

    def token_counts(self) -> dict[str, int]:
        """Tokens served per split (after ``max_*_tokens``); every one is a target exactly once per pass."""
        self._require_setup()
        return {split: len(stream) for split, stream in self.streams.items()}

    def unseen_counts(self) -> dict[str, int]:
        """Tokens of each whole split absent from the train vocabulary (mapped to ``<unk>``)."""
        self._require_setup()
        return dict(self.stats["unseen"])

    def _require_setup(self) -> None:
        if not self.streams:
            raise RuntimeError("WikiTextDataModule: call prepare_data() and setup() before reading splits")

    def summary_metrics(self) -> dict[str, float]:
        """Data facts recorded beside a run's metrics: scored test tokens and test tokens unseen in train."""
        return {
            "test/tokens": float(self.token_counts()["test"]),
            "test/unseen_tokens": float(self.unseen_counts()["test"]),
        }
