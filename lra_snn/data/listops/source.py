"""Where ListOps examples come from: LRA's generator (seeded) or the release's TSV files.

Release files (LRA, Tay et al. 2020): ``listops-1000/basic_{train,val,test}.tsv``, header
``Source<TAB>Target``, one ``expression<TAB>label`` per line (lines end in ``\\r\\n``); the original
ListOps release (Nangia & Bowman 2018, e.g. ``test_d20s.tsv``) has no header and the label first.
Every line is checked (columns, label 0-9, UTF-8, the expression's syntax) and an error names its
file and line; a file without examples is an error too. Generated examples are LRA's recipe
(``lra_snn.data.listops.generate``): ``n_train + n_val + n_test`` distinct trees, split in order.

Both give, per split, rows ``{"expression", "label", "line"}`` (``line``: the 1-based line in the
file, or the index of a generated example), as a ``datasets.Dataset`` made of whole columns
(``store.from_columns``) or, where ``datasets`` is absent, as a list (``rows``). ``datasets`` is imported
only when a dataset is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lra_snn.data import store
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.listops.generate import generate, parse
from lra_snn.data.lra_release import GENERATE_OVERRIDE
from lra_snn.data.lra_release import MAKE_TARGET as RELEASE_MAKE_TARGET

if TYPE_CHECKING:
    from datasets import Dataset

RELEASE_FOLDER = "listops-1000"
SPLIT_FILES = {"train": "basic_train.tsv", "val": "basic_val.tsv", "test": "basic_test.tsv"}
HEADER = ("Source", "Target")
MAKE_TARGET = "make data-listops"
SOURCES = ("generate", "release")
COLUMNS: dict[str, store.Column] = {"expression": "string", "label": "int8", "line": "int32"}

Row = dict[str, Any]


def locate_release(release_dir: str | Path | None) -> Path:
    """The folder holding ``basic_{train,val,test}.tsv``: ``release_dir`` itself or the release's nesting below it."""
    if release_dir is None:
        raise ValueError("source='release' needs data.release_dir=<folder of the LRA release>")
    root = Path(release_dir)
    candidates = [
        root,
        root / RELEASE_FOLDER,
        root / "lra_release" / RELEASE_FOLDER,
        root / "lra_release" / "lra_release" / RELEASE_FOLDER,
    ]
    for folder in candidates:
        if all((folder / name).is_file() for name in SPLIT_FILES.values()):
            return folder
    raise DataNotFoundError(
        root / SPLIT_FILES["train"],
        RELEASE_MAKE_TARGET,
        detail="looked for basic_{train,val,test}.tsv in "
        + ", ".join(str(c) for c in candidates)
        + f"; or generate the examples instead with {GENERATE_OVERRIDE}",
    )


def iter_rows(path: str | Path, *, header: bool = True, label_first: bool = False) -> Iterator[Row]:
    """Rows ``{"expression", "label", "line"}`` of a ListOps TSV, every line checked.

    LRA files: ``header=True`` (``Source<TAB>Target`` required), expression first. The original
    ListOps release: ``header=False, label_first=True``. An empty file, or one with a header only,
    is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, MAKE_TARGET)
    examples = lines = 0
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            lines = line_number
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                problem = f"not valid UTF-8 ({error.reason} at byte {error.start})"
                raise DataFormatError(path, line_number, problem) from None
            fields = line.rstrip("\r\n").split("\t")
            if header and line_number == 1:
                if tuple(fields) != HEADER:
                    raise DataFormatError(path, 1, f"expected the header 'Source<TAB>Target', found {line.strip()!r}")
                continue
            if len(fields) != 2:
                raise DataFormatError(path, line_number, f"expected 2 tab-separated columns, found {len(fields)}")
            label_text, expression = (fields[0], fields[1]) if label_first else (fields[1], fields[0])
            label = _parse_label(path, line_number, label_text)
            try:
                parse(expression)
            except ValueError as error:
                raise DataFormatError(path, line_number, str(error)) from None
            examples += 1
            yield {"expression": expression, "label": label, "line": line_number}
    if not examples:
        problem = "the file is empty" if not lines else "the file holds no examples"
        problem += " (only a header)" if lines and header else ""
        raise DataFormatError(path, 1, problem + "; the copy of the release is incomplete")


def _parse_label(path: Path, line_number: int, text: str) -> int:
    try:
        label = int(text)
    except ValueError:
        raise DataFormatError(path, line_number, f"label {text!r} is not an integer") from None
    if not 0 <= label <= 9:
        raise DataFormatError(path, line_number, f"label {label} is outside 0-9")
    return label


def generated_rows(settings: dict[str, Any]) -> dict[str, list[Row]]:
    """Per split, the generated examples (``settings``: n_train, n_val, n_test, seed and the bounds)."""
    sizes = {split: settings[f"n_{split}"] for split in SPLIT_FILES}
    bounds = {key: settings[key] for key in ("max_depth", "max_args", "min_length", "max_length")}
    examples = generate(sum(sizes.values()), seed=settings["seed"], **bounds)
    rows, start = {}, 0
    for split, size in sizes.items():
        rows[split] = [
            {"expression": expression, "label": label, "line": start + i + 1}
            for i, (expression, label) in enumerate(examples[start : start + size])
        ]
        start += size
    return rows


def release_rows(folder: Path) -> dict[str, list[Row]]:
    """Per split, the rows of the release files in ``folder``."""
    return {split: list(iter_rows(folder / name)) for split, name in SPLIT_FILES.items()}


def generated_dataset(settings: dict[str, Any]) -> dict[str, Dataset]:
    """The generated examples as one ``datasets.Dataset`` per split."""
    return {
        split: store.from_rows(rows, COLUMNS, f"generated-{split}") for split, rows in generated_rows(settings).items()
    }


def release_dataset(folder: Path) -> dict[str, Dataset]:
    """The release files in ``folder`` as one ``datasets.Dataset`` per split."""
    return {
        split: store.from_rows(iter_rows(folder / name), COLUMNS, f"release-{split}")
        for split, name in SPLIT_FILES.items()
    }
