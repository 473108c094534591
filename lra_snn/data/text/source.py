"""Where IMDB reviews (Maas et al. 2011; LRA Text, Tay et al. 2020) come from: the release archive or the Hub.

Release: the official ``aclImdb_v1.tar.gz`` layout ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``,
streamed from the tarball in one pass (nothing is extracted) or read from an unpacked folder;
label pos = 1, neg = 0; each split ordered by label, then id. Hub: ``stanfordnlp/imdb``, config
``plain_text`` (columns ``text``, ``label`` with neg = 0, pos = 1; its ``unsupervised`` split is not
used), in the Hub's order, kept on disk by ``lra_snn.data.download.fetch_hub``.

Both give the splits ``train`` and ``test`` as ``datasets.Dataset``s with the columns ``text``
(the review's bytes), ``label`` (int8) and ``name`` (the archive member, or ``<split>/<row>`` of
the Hub snapshot, naming the review in errors).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lra_snn.data import store
from lra_snn.data.download import check_saved_hub, first_existing, iter_archive_files, reading_archive
from lra_snn.data.errors import DataFormatError, DataNotFoundError

if TYPE_CHECKING:
    from datasets import Dataset

IMDB_SPLITS = ("train", "test")
HUB_LAYOUT = {split: ("text", "label") for split in IMDB_SPLITS}  # what a Hub snapshot must have
SENTIMENT_LABELS = {"neg": 0, "pos": 1}
REVIEW_NAME = re.compile(r"(?:.*/)?aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt")
MAKE_TARGET = "make data-text"
HUB_PATH = "stanfordnlp/imdb"
HUB_CONFIG = "plain_text"

COLUMNS: dict[str, store.Column] = {"text": "binary", "label": "int8", "name": "string"}
_READ_COLUMNS: dict[str, store.Column] = {**COLUMNS, "split": "int8", "id": "int32"}


def locate_source(candidates: Sequence[str | Path]) -> Path:
    """The first candidate (an aclImdb archive or folder) that exists; else ``DataNotFoundError``."""
    return first_existing(candidates, MAKE_TARGET, "an aclImdb archive or folder")


def iter_review_files(source: Path) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of every review file; names read ``aclImdb/<split>/<label>/<id>_<rating>.txt``."""
    if source.is_dir():
        root = source / "aclImdb" if (source / "aclImdb").is_dir() else source
        for path in sorted(root.glob("*/*/*.txt")):
            name = f"aclImdb/{path.relative_to(root).as_posix()}"
            if REVIEW_NAME.fullmatch(name):
                yield name, path.read_bytes()
        return
    with reading_archive(source):
        for name, stream in iter_archive_files(source, members=lambda name: REVIEW_NAME.fullmatch(name) is not None):
            yield name, stream.read()


def _review_rows(source: Path) -> Iterator[dict[str, Any]]:
    for name, data in iter_review_files(source):
        match = REVIEW_NAME.fullmatch(name)
        assert match is not None  # selected by the pattern
        split, sentiment, review_id, _rating = match.groups()
        yield {
            "text": data,
            "label": SENTIMENT_LABELS[sentiment],
            "name": name,
            "split": IMDB_SPLITS.index(split),
            "id": int(review_id),
        }


def release_dataset(source: Path) -> dict[str, Dataset]:
    """The train and test reviews of an IMDB archive or folder (``aclImdb/`` itself or its parent)."""
    reviews = store.from_rows(_review_rows(source), _READ_COLUMNS, "imdb-reviews")
    splits, labels, ids = (store.column(reviews, key) for key in ("split", "label", "id"))
    result = {}
    for code, split in enumerate(IMDB_SPLITS):
        members = np.flatnonzero(splits == code)
        if not len(members):
            raise DataNotFoundError(
                source, MAKE_TARGET, detail=f"it holds no review aclImdb/{split}/{{pos,neg}}/<id>_<rating>.txt"
            )
        ordered = members[np.lexsort((ids[members], labels[members]))]
        result[split] = store.select(reviews, ordered).remove_columns(["split", "id"])
    return result


def _hub_rows(batch: dict[str, list], indices: list[int], *, split: str, origin: str) -> dict[str, list]:
    for label, text, index in zip(batch["label"], batch["text"], indices):
        if label not in (0, 1):
            problem = f"label {label!r} of {split} row {index} is not 0 (neg) or 1 (pos)"
            raise DataFormatError(origin, index + 1, problem)
        if not isinstance(text, str):
            raise DataFormatError(origin, index + 1, f"the text of {split} row {index} is {text!r}, not a review")
    return {
        "text": [text.encode("utf-8") for text in batch["text"]],
        "label": batch["label"],
        "name": [f"{split}/{index}" for index in indices],
    }


def hub_dataset(snapshot: Path, staging: Path) -> dict[str, Dataset]:
    """The train and test reviews of a Hub snapshot (``fetch_hub`` of ``stanfordnlp/imdb``), release columns."""
    from datasets import load_from_disk

    loaded = load_from_disk(str(snapshot))
    check_saved_hub(loaded, snapshot, HUB_LAYOUT, MAKE_TARGET)
    result = {}
    for split in IMDB_SPLITS:
        result[split] = store.map_batches(
            loaded[split],
            _hub_rows,
            COLUMNS,
            staging,
            f"hub-{split}",
            with_indices=True,
            split=split,
            origin=str(snapshot / split),
        )
    return result
