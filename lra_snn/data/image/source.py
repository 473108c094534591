"""Where CIFAR-10 images (Krizhevsky 2009; LRA Image, Tay et al. 2020) come from: the release batches or the Hub.

Release: the official python batches ``cifar-10-batches-py/data_batch_{1..5}`` and ``test_batch``
(pickled dicts: ``b"data"`` (N, 3072) uint8 as 1,024 red, 1,024 green, 1,024 blue values, each
channel row-major, and ``b"labels"``, integers 0-9), read from ``cifar-10-python.tar.gz`` without
extracting it or from an unpacked folder, with an unpickler that admits numpy arrays only. Hub:
``uoft-cs/cifar10``, config ``plain_text`` (columns ``img``, a PNG, and ``label`` 0-9), kept on disk
by ``lra_snn.data.download.fetch_hub``; each image is decoded to the release's row layout.

Both give the splits ``train`` (the five batches in order, 50,000 images) and ``test`` as
``datasets.Dataset``s with the columns ``pixels`` (the 3,072 bytes of an image in the release's
layout) and ``label`` (int8).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from lra_snn.data import store
from lra_snn.data.download import check_saved_hub, first_existing, iter_archive_files, reading_archive
from lra_snn.data.errors import DataFormatError, DataNotFoundError

if TYPE_CHECKING:
    from datasets import Dataset

BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
BATCHES = TRAIN_BATCHES + TEST_BATCHES
SIDE = 32
PIXELS = SIDE * SIDE
N_CHANNELS = 3
HUB_LAYOUT = {split: ("img", "label") for split in ("train", "test")}  # what a Hub snapshot must have
MAKE_TARGET = "make data-image"
HUB_PATH = "uoft-cs/cifar10"
HUB_CONFIG = "plain_text"

COLUMNS: dict[str, store.Column] = {"pixels": "binary", "label": "int8"}

# Globals a CIFAR-10 pickle may name: numpy's array reconstruction (numpy 1 and 2 module names) and
# the bytes constructors that protocol-2 pickles written by Python 3 use (``bytes()`` for empty data).
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("__builtin__", "bytes"),
    ("builtins", "bytes"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays")
        return super().find_class(module, name)


def load_batch(data: bytes, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 3072) uint8, labels (N,) int64)`` of one pickled batch; ``path`` names it in errors.

    Format errors name the file and, for a bad label, the 1-based record (line 1: the file as a whole).
    Labels must be integers 0-9: a float label (even 3.0), NaN or any other value is refused.
    """
    try:
        batch = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataFormatError(path, 1, f"not a CIFAR-10 python batch ({error})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataFormatError(path, 1, 'not a CIFAR-10 python batch (expected a dict with b"data" and b"labels")')
    images = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != N_CHANNELS * PIXELS:
        raise DataFormatError(
            path, 1, f'b"data" must be uint8 of shape (N, {N_CHANNELS * PIXELS}), got {images.dtype} {images.shape}'
        )
    if not len(images):
        raise DataFormatError(path, 1, "the batch holds no images")
    if labels.shape != (len(images),):
        raise DataFormatError(path, 1, f'{len(images)} images but b"labels" has shape {labels.shape}')
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        record = 0
        if np.issubdtype(labels.dtype, np.floating):
            fractional = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)))
            record = int(fractional[0]) if fractional.size else 0
        raise DataFormatError(
            path,
            record + 1,
            f"label {labels[record].item()!r} is not an integer ({labels.dtype} "
            f"labels); CIFAR-10 labels are the integers 0-9: this is not a CIFAR-10 batch",
        )
    outside = np.flatnonzero((labels < 0) | (labels > 9))
    if outside.size:
        raise DataFormatError(path, int(outside[0]) + 1, f"label {labels[outside[0]]} is outside 0-9")
    return images, labels.astype(np.int64)


def locate_source(candidates: Sequence[str | Path]) -> Path:
    """The first candidate (a CIFAR-10 tarball or folder) that exists; else ``DataNotFoundError``."""
    return first_existing(candidates, MAKE_TARGET, "a CIFAR-10 tarball or folder")


def _is_batch_file(name: str) -> bool:
    folder, _, filename = name.rpartition("/")
    return filename in BATCHES and folder.rpartition("/")[2] == BATCH_FOLDER


def iter_batch_files(source: Path) -> Iterator[tuple[str, bytes]]:
    """``(batch name, pickled bytes)`` of every batch file in the tarball or folder."""
    if source.is_dir():
        folder = source / BATCH_FOLDER if (source / BATCH_FOLDER).is_dir() else source
        for name in BATCHES:
            if (folder / name).is_file():
                yield name, (folder / name).read_bytes()
        return
    with reading_archive(source):
        for member, stream in iter_archive_files(source, members=_is_batch_file):
            yield member.rpartition("/")[2], stream.read()


def release_dataset(source: Path) -> dict[str, Dataset]:
    """The train and test images of the tarball or an unpacked folder, batches in order."""
    import pyarrow as pa

    pixels, labels, batches, records = [], [], [], []
    for name, data in iter_batch_files(source):
        images, batch_labels = load_batch(data, source / BATCH_FOLDER / name)
        pixels.append(store.binary_rows(images))
        labels.append(batch_labels)
        batches.append(np.full(len(images), BATCHES.index(name)))
        records.append(np.arange(len(images)))
    batch_codes = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
    missing = [name for code, name in enumerate(BATCHES) if not (batch_codes == code).any()]
    if missing:
        raise DataNotFoundError(source, MAKE_TARGET, detail=f"it lacks {BATCH_FOLDER}/{{{','.join(missing)}}}")
    columns = {"pixels": pa.chunked_array(pixels, type=pa.binary()), "label": np.concatenate(labels)}
    images = store.from_columns(columns, COLUMNS, "cifar-images")
    record_codes = np.concatenate(records)
    result = {}
    for split, names in (("train", TRAIN_BATCHES), ("test", TEST_BATCHES)):
        codes = [BATCHES.index(name) for name in names]
        members = np.flatnonzero(np.isin(batch_codes, codes))
        ordered = members[np.lexsort((record_codes[members], batch_codes[members]))]
        result[split] = store.select(images, ordered)
    return result


def _hub_rows(batch: dict[str, list], indices: list[int], *, split: str, origin: str) -> dict[str, list]:
    pixels = []
    for image, label, index in zip(batch["img"], batch["label"], indices):
        if not isinstance(label, int) or not 0 <= label <= 9:
            raise DataFormatError(origin, index + 1, f"label {label!r} of {split} row {index} is not an integer 0-9")
        with Image.open(io.BytesIO(image["bytes"])) as decoded:
            rgb = np.asarray(decoded.convert("RGB"))
        if rgb.shape != (SIDE, SIDE, N_CHANNELS):
            raise DataFormatError(
                origin,
                index + 1,
                f"image of {split} row {index} is {rgb.shape[1]}x{rgb.shape[0]} px, expected {SIDE}x{SIDE}",
            )
        pixels.append(np.ascontiguousarray(rgb.transpose(2, 0, 1)).tobytes())  # channel planes, each row-major
    return {"pixels": pixels, "label": batch["label"]}


def hub_dataset(snapshot: Path, staging: Path) -> dict[str, Dataset]:
    """The train and test images of a Hub snapshot (``fetch_hub`` of ``uoft-cs/cifar10``), release layout."""
    from datasets import Image as ImageFeature
    from datasets import load_from_disk

    loaded = load_from_disk(str(snapshot))
    check_saved_hub(loaded, snapshot, HUB_LAYOUT, MAKE_TARGET)
    result = {}
    for split in HUB_LAYOUT:
        undecoded = loaded[split].cast_column("img", ImageFeature(decode=False))
        result[split] = store.map_batches(
            undecoded,
            _hub_rows,
            COLUMNS,
            staging,
            f"hub-{split}",
            with_indices=True,
            split=split,
            origin=str(snapshot / split),
        )
    return result
