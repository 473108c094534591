"""Numpy views of stored columns (lra_snn/data/views.py) over Arrow tables of many chunks, sliced chunks
included, and the batches the collate functions make of them (lra_snn/data/collate.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from lra_snn.data import views
from lra_snn.data.collate import PixelCollate, collate_pairs, collate_tokens, pad
from lra_snn.data.views import Fixed, PairRows, PixelRows, Ragged, TokenRows, labels

RNG = np.random.default_rng(0)
SEQUENCES = [RNG.integers(3, 300, size=int(RNG.integers(1, 9))).astype(np.int16) for _ in range(23)]
IMAGES = RNG.integers(0, 256, size=(23, 6), dtype=np.uint8)


def chunked_table(sizes: list[int]) -> pa.Table:
    """A table of ``ids`` (list<int16>), ``pixels`` (fixed_size_list<uint8>[6]) and ``label``, in chunks of ``sizes``;
    the first chunk is a slice of a larger array (offsets that do not start at 0)."""
    batches, start = [], 0
    for k, size in enumerate(sizes):
        lead = 2 if k == 0 else 0
        ids = pa.array(
            [s.tolist() for s in ([SEQUENCES[-1]] * lead + SEQUENCES[start : start + size])], type=pa.list_(pa.int16())
        ).slice(lead)
        pixels = pa.FixedSizeListArray.from_arrays(
            pa.array(np.concatenate([IMAGES[-1:]] * lead + [IMAGES[start : start + size]]).ravel()), 6
        ).slice(lead)
        label = pa.array(np.arange(start, start + size) % 3, type=pa.int8())
        batches.append(pa.RecordBatch.from_arrays([ids, pixels, label], names=["ids", "pixels", "label"]))
        start += size
    return pa.Table.from_batches(batches)


@pytest.mark.parametrize("contiguous_bytes", [views.CONTIGUOUS_BYTES, 0], ids=["copied-to-one-chunk", "chunked"])
@pytest.mark.parametrize("sizes", [[23], [5, 1, 10, 7], [1] * 23])
def test_ragged_and_fixed_views_read_every_row_across_chunks(
    sizes: list[int], contiguous_bytes: int, monkeypatch
) -> None:
    monkeypatch.setattr(views, "CONTIGUOUS_BYTES", contiguous_bytes)
    table = chunked_table(sizes)
    ids, pixels = Ragged.from_arrow(table.column("ids")), Fixed.from_arrow(table.column("pixels"))
    assert len(ids) == len(pixels) == 23 and ids.dtype == np.int16
    assert len(pixels.chunks) == (1 if contiguous_bytes else len(sizes))
    order = RNG.permutation(23)
    assert all(np.array_equal(row, SEQUENCES[i]) for row, i in zip(ids.rows(order), order))
    assert np.array_equal(ids.lengths(), [len(s) for s in SEQUENCES])
    assert np.array_equal(pixels.take(order), IMAGES[order]) and pixels.take([]).shape == (0, 6)
    assert np.array_equal(labels(table.column("label")), np.arange(23) % 3)
    with pytest.raises(IndexError, match=r"row indices must lie in \[0, 23\)"):
        ids.rows([23])
    with pytest.raises(IndexError):
        pixels.take([-1])


def test_in_memory_rows_equal_stored_rows() -> None:
    memory = Ragged.from_sequences(SEQUENCES, np.dtype(np.int16))
    stored = Ragged.from_arrow(chunked_table([7, 16]).column("ids"))
    assert all(np.array_equal(a, b) for a, b in zip(memory.rows(range(23)), stored.rows(range(23))))


def test_token_batches_are_padded_with_lengths() -> None:
    rows = TokenRows(Ragged.from_sequences(SEQUENCES, np.dtype(np.int16)), np.arange(23) % 2)
    batch = collate_tokens(rows.__getitems__([4, 0, 9]))
    longest = max(len(SEQUENCES[i]) for i in (4, 0, 9))
    assert batch["inputs"].shape == (3, longest) and batch["inputs"].dtype == torch.int64
    for row, i in zip(batch["inputs"], (4, 0, 9)):
        assert row[: len(SEQUENCES[i])].tolist() == SEQUENCES[i].tolist() and (row[len(SEQUENCES[i]) :] == 0).all()
    assert batch["lengths"].tolist() == [len(SEQUENCES[i]) for i in (4, 0, 9)] and batch["labels"].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="empty batch"):
        pad([])
    with pytest.raises(ValueError, match="2 sequences but 3 labels"):
        TokenRows(Ragged.from_sequences(SEQUENCES[:2], np.dtype(np.int16)), np.zeros(3))


def test_pair_batches_pad_both_documents_to_the_longest() -> None:
    first, second = (Ragged.from_sequences(SEQUENCES[k::2][:10], np.dtype(np.int16)) for k in (0, 1))
    batch = collate_pairs(PairRows(first, second, np.arange(10) % 2).__getitems__([2, 7]))
    documents = [SEQUENCES[0::2][2], SEQUENCES[1::2][2], SEQUENCES[0::2][7], SEQUENCES[1::2][7]]
    assert batch["inputs"].shape == (2, 2, max(len(d) for d in documents))
    assert batch["lengths"].tolist() == [[len(documents[0]), len(documents[1])], [len(documents[2]), len(documents[3])]]
    assert batch["inputs"][1, 0, : len(documents[2])].tolist() == documents[2].tolist()


def test_pixel_batches_as_values_or_tokens() -> None:
    rows = PixelRows(Fixed.from_arrow(chunked_table([3, 20]).column("pixels")), np.arange(23))
    values = PixelCollate("values", mean=10.0, std=4.0)(rows.__getitems__([1, 5]))
    assert values["inputs"].shape == (2, 6, 1) and values["inputs"].dtype == torch.float32
    torch.testing.assert_close(values["inputs"][..., 0], (torch.from_numpy(IMAGES[[1, 5]]).float() - 10.0) / 4.0)
    tokens = PixelCollate("tokens")(rows.__getitems__([1, 5]))
    assert torch.equal(tokens["inputs"], torch.from_numpy(IMAGES[[1, 5]]).long() + 3)
    assert tokens["lengths"].tolist() == [6, 6] and tokens["labels"].tolist() == [1, 5]
    with pytest.raises(ValueError, match="mode must be one of"):
        PixelCollate("rgb")
