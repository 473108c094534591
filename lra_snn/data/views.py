"""Rows of stored splits as numpy views, and the map-style datasets the loaders read.

A cached split is an Arrow table, memory-mapped and made of chunks (``lra_snn.data.store``).
``Ragged`` gives the variable-length rows of a list column (token ids), ``Fixed`` the equal-length
rows of a fixed-size list column (pixels), both as numpy views of the chunks' buffers: nothing is
copied until a batch is assembled. ``Ragged.from_sequences`` holds in-memory rows the same way
(ListOps without ``datasets``). The datasets below read a whole batch in one ``__getitems__`` call;
the collate functions (``lra_snn.data.collate``) pad and convert it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from torch.utils.data import Dataset

if TYPE_CHECKING:
    import pyarrow as pa

CONTIGUOUS_BYTES = 256 << 20  # a fixed-size column (or a token stream) up to this size is made one chunk when opened


def _numpy(array: pa.Array) -> np.ndarray:
    """A primitive Arrow array (no nulls) as a numpy view of its data buffer (no copy; pyarrow's own
    ``to_numpy`` would import pandas, a large import a training run does not otherwise need)."""
    if array.null_count:
        raise ValueError(f"a stored column holds {array.null_count} missing values; rebuild the cache")
    data = array.buffers()[1]
    dtype = np.dtype(str(array.type))
    if data is None:  # an empty array may have no buffer
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(data, dtype=dtype, count=array.offset + len(array))[array.offset :]


def _chunk_of(starts: np.ndarray, indices: np.ndarray, n_rows: int) -> np.ndarray:
    """The chunk holding each row index (``starts``: first row of every chunk, then the row count)."""
    if indices.size and (indices.min() < 0 or indices.max() >= n_rows):
        raise IndexError(f"row indices must lie in [0, {n_rows}), got {indices.min()}..{indices.max()}")
    return np.searchsorted(starts, indices, side="right") - 1


class Ragged:
    """Variable-length rows stored as chunks of (offsets, values): row i of a chunk is
    ``values[offsets[i]:offsets[i + 1]]``."""

    def __init__(self, chunks: Sequence[tuple[np.ndarray, np.ndarray]], dtype: np.dtype) -> None:
        kept = [(offsets, values) for offsets, values in chunks if len(offsets) > 1]
        self.offsets = [offsets for offsets, _ in kept]
        self.values = [values for _, values in kept]
        self.starts = np.concatenate([[0], np.cumsum([len(offsets) - 1 for offsets in self.offsets])]).astype(np.int64)
        self.dtype = np.dtype(dtype)

    @classmethod
    def from_arrow(cls, column: pa.ChunkedArray) -> Ragged:
        """Views of a list column (``list<int>``) of a table; ``offsets`` index the unsliced ``values``."""
        chunks = [(_numpy(chunk.offsets), _numpy(chunk.values)) for chunk in column.chunks]
        return cls(chunks, np.dtype(str(column.type.value_type)))  # int16 / int32: the numpy names

    @classmethod
    def from_sequences(cls, sequences: Sequence[np.ndarray], dtype: np.dtype) -> Ragged:
        """In-memory rows: ``sequences`` concatenated in one chunk of ``dtype``."""
        offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
        np.cumsum([len(sequence) for sequence in sequences], out=offsets[1:])
        values = np.concatenate(sequences).astype(dtype) if len(sequences) else np.zeros(0, dtype=dtype)
        return cls([(offsets, values)], dtype)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def row(self, index: int) -> np.ndarray:
        """Row ``index`` (a view)."""
        return self.rows([index])[0]

    def rows(self, indices: Sequence[int] | np.ndarray) -> list[np.ndarray]:
        """Rows ``indices`` (views), in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        chunks = _chunk_of(self.starts, indices, len(self))
        local = indices - self.starts[chunks]
        return [
            self.values[c][self.offsets[c][i] : self.offsets[c][i + 1]] for c, i in zip(chunks.tolist(), local.tolist())
        ]

    def lengths(self) -> np.ndarray:
        """The length of every row."""
        return np.concatenate([np.diff(offsets) for offsets in self.offsets] or [np.zeros(0)]).astype(np.int64)


class Fixed:
    """Rows of one length stored as chunks of 2-D arrays (rows x width)."""

    def __init__(self, chunks: Sequence[np.ndarray]) -> None:
        self.chunks = [chunk for chunk in chunks if len(chunk)]
        self.width = self.chunks[0].shape[1] if self.chunks else 0
        self.starts = np.concatenate([[0], np.cumsum([len(chunk) for chunk in self.chunks])]).astype(np.int64)

    @classmethod
    def from_arrow(cls, column: pa.ChunkedArray) -> Fixed:
        """Views of a fixed-size list column (``fixed_size_list<uint8>[width]``) of a table.

        A column of at most ``CONTIGUOUS_BYTES`` is first copied into one chunk, so a batch is one
        fancy-indexing operation (the saved files hold chunks of 1,000 rows); a larger one is read
        through its chunks, row by row.
        """
        width = column.type.list_size
        chunks = column.chunks
        if len(chunks) > 1 and column.nbytes <= CONTIGUOUS_BYTES:
            chunks = [column.combine_chunks()]
        return cls([_numpy(chunk.flatten()).reshape(len(chunk), width) for chunk in chunks])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def take(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows ``indices`` as one new array (len(indices), width)."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(self.chunks) == 1:
            if indices.size and indices.min() < 0:  # numpy would count from the end
                raise IndexError(f"row indices must lie in [0, {len(self)}), got {indices.min()}")
            return self.chunks[0][indices]  # numpy refuses indices past the end
        chunks = _chunk_of(self.starts, indices, len(self))
        out = np.empty((len(indices), self.width), dtype=self.chunks[0].dtype)
        for row, (chunk, local) in enumerate(zip(chunks.tolist(), (indices - self.starts[chunks]).tolist())):
            out[row] = self.chunks[chunk][local]
        return out


def labels(column: pa.ChunkedArray) -> np.ndarray:
    """A label column as one int64 array (a copy: labels are small)."""
    parts = [_numpy(chunk) for chunk in column.chunks]
    return np.concatenate([np.zeros(0, dtype=np.int64), *parts]).astype(np.int64)


class TokenRows(Dataset):
    """Token sequences and their labels; a batch is ``(list of id arrays, labels (B,))``."""

    def __init__(self, ids: Ragged, labels: np.ndarray) -> None:
        if len(ids) != len(labels):
            raise ValueError(f"{len(ids)} sequences but {len(labels)} labels")
        self.ids = ids
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.ids.row(index), int(self.labels[index])

    def __getitems__(self, indices: Sequence[int]) -> tuple[list[np.ndarray], np.ndarray]:
        return self.ids.rows(indices), self.labels[np.asarray(indices, dtype=np.int64)]


class PairRows(Dataset):
    """Pairs of token sequences (LRA Retrieval) and their labels; a batch is ``(firsts, seconds, labels)``."""

    def __init__(self, first: Ragged, second: Ragged, labels: np.ndarray) -> None:
        if not len(first) == len(second) == len(labels):
            raise ValueError(f"{len(first)} first and {len(second)} second documents but {len(labels)} labels")
        self.first = first
        self.second = second
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        return self.first.row(index), self.second.row(index), int(self.labels[index])

    def __getitems__(self, indices: Sequence[int]) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        return self.first.rows(indices), self.second.rows(indices), self.labels[np.asarray(indices, dtype=np.int64)]


class PixelRows(Dataset):
    """Images flattened row-major (uint8) and their labels; a batch is ``(pixels (B, L), labels (B,))``."""

    def __init__(self, pixels: Fixed, labels: np.ndarray) -> None:
        if len(pixels) != len(labels):
            raise ValueError(f"{len(pixels)} images but {len(labels)} labels")
        self.pixels = pixels
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.pixels.take([index])[0], int(self.labels[index])

    def __getitems__(self, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = np.asarray(indices, dtype=np.int64)
        return self.pixels.take(rows), self.labels[rows]
