"""WikiText-103 word-level language modelling (Merity et al. 2016; data.md "Formats", WikiText-103).

Reading: whitespace tokens, case kept, ``<eos>`` after every line (empty lines included), so the
published token counts come out exactly (valid 217,646, test 245,569). The vocabulary is every
token type of the train file, ids sorted by train count (most frequent first, ties by first
occurrence), so the adaptive softmax's head cluster holds the frequent words (vocabulary 267,735
on WikiText-103, ``<unk>`` and ``<eos>`` included). A valid/test token never seen in train maps to
``<unk>`` and is counted (the released files are already ``<unk>``-ed, so the count should be 0).

Cache (``<data_dir>/cache/wikitext103/<hash>/``): ``vocab.txt`` (token and train count per line),
one raw little-endian int32 stream per split (``train.bin``, ``valid.bin``, ``test.bin``, read back
as a memmap, as nanoGPT does) and ``stats.json`` (tokens and unseen tokens per split).

Serving: the stream of N tokens is split into ``rows`` contiguous rows (lengths differ by at most
one) read as consecutive windows of ``max_length`` steps; targets are the stream itself and inputs
the stream shifted right by one, preceded by one ``<eos>`` (the end of the line before the file), so
every token is a target exactly once. The last window of a row may be partial: its true length is
in ``lengths`` and its unused target slots hold ``IGNORE_INDEX``.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lra_snn.data import download
from lra_snn.data.cache import cache_dir, check_settings, ensure_built, is_complete
from lra_snn.data.errors import DataFormatError, DataNotFoundError

log = logging.getLogger(__name__)

TASK = "wikitext103"
MAKE_TARGET = "make data-wikitext103"
SPLITS = ("train", "valid", "test")
UNK, EOS = "<unk>", "<eos>"
ARCHIVE_FOLDER = "wikitext-103"  # the folder wikitext-103-v1.zip unpacks to
IGNORE_INDEX = -100  # target of a padded slot (torch's cross-entropy convention)
STREAM_DTYPE = np.dtype("<i4")
VOCAB_FILE = "vocab.txt"
STATS_FILE = "stats.json"
CACHE_FORMAT = 1  # bump when the cached files change meaning
ENCODE_CHUNK = 1 << 20  # tokens encoded per write while building a stream


# --------------------------------------------------------------------------- reading


def iter_lines(path: str | Path) -> Iterator[list[str]]:
    """The tokens of every line of a WikiText file, each line followed by ``<eos>``.

    Lines end at ``\\n`` only; a line that is not UTF-8 is a ``DataFormatError`` naming it.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                problem = f"not valid UTF-8 ({error.reason} at byte {error.start})"
                raise DataFormatError(path, line_number, problem) from None
            yield line.split() + [EOS]


def count_tokens(path: str | Path) -> Counter:
    """How often every token occurs in a WikiText file (``<eos>`` once per line), in order of first occurrence."""
    counts: Counter = Counter()
    for words in iter_lines(path):
        counts.update(words)
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


def id_chunks(path: str | Path, vocabulary: Vocabulary, chunk_tokens: int = ENCODE_CHUNK) -> Iterator[np.ndarray]:
    """Vocabulary ids (int64) of the tokens of ``path`` in chunks of about ``chunk_tokens``; -1 where unseen."""
    lookup = vocabulary.index.get
    buffer: list[int] = []
    for words in iter_lines(path):
        buffer.extend([lookup(word, -1) for word in words])
        if len(buffer) >= chunk_tokens:
            yield np.asarray(buffer, dtype=np.int64)
            buffer = []
    if buffer:
        yield np.asarray(buffer, dtype=np.int64)


def encode_file(path: str | Path, vocabulary: Vocabulary, destination: str | Path) -> tuple[int, int]:
    """Write the ids of every token of ``path`` to ``destination`` (raw int32); return (tokens, unseen).

    Tokens absent from the vocabulary become ``<unk>`` and are counted as unseen.
    """
    n_tokens = n_unseen = 0
    with open(destination, "wb") as out:
        for ids in id_chunks(path, vocabulary):
            unseen = ids < 0
            ids[unseen] = vocabulary.unk_id
            out.write(ids.astype(STREAM_DTYPE).tobytes())
            n_tokens += len(ids)
            n_unseen += int(unseen.sum())
    if n_tokens == 0:
        raise DataFormatError(path, 1, "the file holds no lines")
    return n_tokens, n_unseen


def load_stream(path: str | Path) -> np.ndarray:
    """Memory-map a stream written by ``encode_file`` (read-only int32)."""
    return np.memmap(path, dtype=STREAM_DTYPE, mode="r")


# --------------------------------------------------------------------------- windows


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

    def __init__(self, stream: np.ndarray, rows: int, max_length: int, context_id: int,
                 rank: int = 0, world_size: int = 1) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        if rows % world_size:
            raise ValueError(f"global_batch={rows} rows cannot be shared by {world_size} devices; "
                             f"make it a multiple of the device count")
        starts, lengths = row_bounds(len(stream), rows)
        share = rows // world_size
        self.stream = stream
        self.max_length = max_length
        self.context_id = context_id
        self.n_windows = math.ceil(int(lengths.max()) / max_length)
        self.row_starts = starts[rank * share:(rank + 1) * share]
        self.row_lengths = lengths[rank * share:(rank + 1) * share]

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


def locate_source(source_dir: str | Path, files: dict[str, str]) -> Path:
    """The folder holding every split file: ``source_dir`` itself or the archive's ``wikitext-103/`` below it."""
    root = Path(source_dir)
    candidates = [root, root / ARCHIVE_FOLDER]
    for folder in candidates:
        if all((folder / name).is_file() for name in files.values()):
            return folder
    absent = [name for name in files.values() if not (root / name).is_file()]
    raise DataNotFoundError(
        root / absent[0], MAKE_TARGET,
        detail=f"looked for {', '.join(files.values())} in " + " and ".join(str(c) for c in candidates),
    )


class WikiTextDataModule(L.LightningDataModule):
    """WikiText-103 (or a file set in its format): next-token batches of ``global_batch`` rows.

    ``source_dir`` holds ``train_file``, ``valid_file`` and ``test_file`` (names relative to it, or
    absolute), directly or in the archive's ``wikitext-103/`` subfolder. ``max_length`` is the
    context length. ``max_train_tokens`` / ``max_eval_tokens`` serve only the first tokens of the
    train / valid and test streams (smaller profiles); the cache always holds whole files. Train
    windows are served in stream order every epoch.
    """

    task = TASK

    def __init__(
        self,
        *,
        data_dir: str | Path,
        source_dir: str | Path | None = None,
        train_file: str = "wiki.train.tokens",
        valid_file: str = "wiki.valid.tokens",
        test_file: str = "wiki.test.tokens",
        max_length: int = 8192,
        global_batch: int = 8,
        eval_global_batch: int | None = None,
        max_train_tokens: int | None = None,
        max_eval_tokens: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (("max_length", max_length), ("global_batch", global_batch),
                            ("eval_global_batch", eval_global_batch), ("max_train_tokens", max_train_tokens),
                            ("max_eval_tokens", max_eval_tokens)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        self.data_dir = Path(data_dir)
        self.source_dir = Path(source_dir) if source_dir is not None else self.data_dir / "downloads" / ARCHIVE_FOLDER
        self.files = {"train": train_file, "valid": valid_file, "test": test_file}
        self.max_length = max_length
        self.global_batch = global_batch
        self.eval_global_batch = eval_global_batch or global_batch
        self.token_limits = {"train": max_train_tokens, "valid": max_eval_tokens, "test": max_eval_tokens}
        self.num_workers = num_workers
        self.vocabulary: Vocabulary | None = None
        self.streams: dict[str, np.ndarray] = {}
        self.stats: dict[str, Any] = {}

    # ------------------------------------------------------------------ locations and settings

    def source_folder(self) -> Path:
        """Folder holding the three split files (``DataNotFoundError`` naming the make target if absent)."""
        return locate_source(self.source_dir, self.files)

    def cache_settings(self) -> dict[str, Any]:
        """Every setting the cache depends on: the format and each split file's location and size."""
        folder = self.source_folder()
        return {
            "format": CACHE_FORMAT,
            "files": {split: {"path": str((folder / name).resolve()), "bytes": (folder / name).stat().st_size}
                      for split, name in self.files.items()},
        }

    def cache_dir(self) -> Path:
        """Folder of the vocabulary and encoded streams for the current source files."""
        return cache_dir(self.data_dir, self.task, self.cache_settings())

    @property
    def vocab_size(self) -> int:
        if self.vocabulary is None:
            raise RuntimeError("WikiTextDataModule: call prepare_data() before asking for the vocabulary size")
        return len(self.vocabulary)

    # ------------------------------------------------------------------ downloading and building

    def download(self) -> Path:
        """Fetch and unpack wikitext-103-v1.zip into ``source_dir`` unless the split files are there (network)."""
        try:
            return self.source_folder()
        except DataNotFoundError:
            archive = download.fetch_source(TASK, self.data_dir / "downloads")
        download.extract(archive, self.source_dir, members=lambda name: name.endswith(".tokens"))
        return self.source_folder()

    def prepare_data(self) -> None:
        """Build the cache from the local files unless complete; then load the vocabulary (needed by the model)."""
        directory = ensure_built(self.cache_dir(), self.cache_settings(), self._write_cache)
        self.vocabulary = Vocabulary.load(directory / VOCAB_FILE)

    def _write_cache(self, target: Path) -> None:
        folder = self.source_folder()
        log.info("building the WikiText vocabulary from %s", folder / self.files["train"])
        vocabulary = Vocabulary.from_counts(count_tokens(folder / self.files["train"]))
        vocabulary.save(target / VOCAB_FILE)
        stats: dict[str, Any] = {"vocab_size": len(vocabulary), "tokens": {}, "unseen": {}}
        for split, name in self.files.items():
            tokens, unseen = encode_file(folder / name, vocabulary, target / f"{split}.bin")
            stats["tokens"][split], stats["unseen"][split] = tokens, unseen
            log.info("%s: %d tokens, %d unseen in train (mapped to <unk>)", split, tokens, unseen)
        (target / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")

    # ------------------------------------------------------------------ Lightning hooks

    def setup(self, stage: str | None = None) -> None:
        """Memory-map the three streams and read the vocabulary from the cache built by ``prepare_data``."""
        directory = self.cache_dir()
        if not is_complete(directory):
            raise DataNotFoundError(directory, MAKE_TARGET, detail="cache not built; call prepare_data() first")
        check_settings(directory, self.cache_settings())
        self.vocabulary = Vocabulary.load(directory / VOCAB_FILE)
        self.stats = json.loads((directory / STATS_FILE).read_text(encoding="utf-8"))
        self.streams = {split: self._limited(load_stream(directory / f"{split}.bin"), split) for split in SPLITS}

    def _limited(self, stream: np.ndarray, split: str) -> np.ndarray:
        limit = self.token_limits[split]
        return stream if limit is None else stream[:limit]

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.global_batch)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", self.eval_global_batch)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_global_batch)

    def windows(self, split: str, rows: int | None = None, rank: int = 0, world_size: int = 1) -> StreamWindows:
        """The windows of ``split`` (default rows: ``global_batch`` for train, ``eval_global_batch`` otherwise)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self._require_setup()
        assert self.vocabulary is not None  # loaded by setup() with the streams
        if rows is None:
            rows = self.global_batch if split == "train" else self.eval_global_batch
        return StreamWindows(self.streams[split], rows, self.max_length, self.vocabulary.eos_id, rank, world_size)

    def _loader(self, split: str, rows: int) -> DataLoader:
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return DataLoader(self.windows(split, rows, rank, world_size), batch_size=None,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

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
        """Tokens of each whole split file absent from the train vocabulary (mapped to ``<unk>``)."""
        self._require_setup()
        return dict(self.stats["unseen"])

    def _require_setup(self) -> None:
        if not self.streams:
            raise RuntimeError("WikiTextDataModule: call prepare_data() and setup() before reading splits")

    def summary_metrics(self) -> dict[str, float]:
        """Data facts recorded beside a run's metrics: scored test tokens and test tokens unseen in train."""
        return {"test/tokens": float(self.token_counts()["test"]),
                "test/unseen_tokens": float(self.unseen_counts()["test"])}
