"""Where LRA Retrieval pairs (Tay et al. 2020; ACL Anthology Network, Radev et al. 2013) come from.

The LRA release's ``tsv_data/new_aan_pairs.{train,eval,test}.tsv`` (eval serves as validation): no
header, 5 tab-separated columns ``label, id1, id2, text1, text2``, read as bytes with quoting OFF
(a quote inside an abstract is text; lines are split on newline and tab only). The label is written
as a number (``0``/``1``, or ``0.0``/``1.0`` as LRA's TF reader parses floats) and must be 0 or 1.
Every line is checked and an error names its file and line; a file without pairs is an error.
Each split becomes a ``datasets.Dataset`` of whole columns (``store.from_rows``): ``label`` (int8),
``first``, ``second`` (the abstracts' bytes) and ``line`` (the 1-based line in the file).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lra_snn.data import store
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.lra_release import MAKE_TARGET as RELEASE_MAKE_TARGET

if TYPE_CHECKING:
    from datasets import Dataset

SPLIT_FILES = {"train": "new_aan_pairs.train.tsv", "val": "new_aan_pairs.eval.tsv", "test": "new_aan_pairs.test.tsv"}
TSV_FOLDER = "tsv_data"
COLUMNS = ("label", "id1", "id2", "text1", "text2")
MAKE_TARGET = "make data-retrieval"
ROW_COLUMNS: dict[str, store.Column] = {"label": "int8", "first": "binary", "second": "binary", "line": "int32"}


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
        RELEASE_MAKE_TARGET,
        detail="looked for new_aan_pairs.{train,eval,test}.tsv in "
        + ", ".join(str(c) for c in candidates)
        + f"; `{MAKE_TARGET}` unpacks these files only",
    )


def iter_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every row of an AAN TSV as ``{"label", "first", "second", "line"}``, checked (``file:line`` errors)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, MAKE_TARGET)
    rows = 0
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            fields = _strip_line_end(raw).split(b"\t")
            if len(fields) != len(COLUMNS):
                raise DataFormatError(
                    path,
                    line_number,
                    f"expected {len(COLUMNS)} tab-separated columns ({', '.join(COLUMNS)}), found {len(fields)}",
                )
            rows += 1
            yield {
                "label": _parse_label(path, line_number, fields[0]),
                "first": fields[3],
                "second": fields[4],
                "line": line_number,
            }
    if not rows:
        raise DataFormatError(path, 1, "the file holds no pairs; the copy of the release is incomplete")


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


def release_dataset(folder: Path) -> dict[str, Dataset]:
    """The three TSVs in ``folder`` as one ``datasets.Dataset`` per split."""
    return {
        split: store.from_rows(iter_rows(folder / name), ROW_COLUMNS, f"aan-{split}")
        for split, name in SPLIT_FILES.items()
    }
