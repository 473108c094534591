"""Where WikiText-103 lines (Merity et al. 2016) come from: the release's token files or the Hub.

Release: ``wiki.{train,valid,test}.tokens`` (in ``wikitext-103-v1.zip``), read as ``datasets``'
``text`` loader reads them: one row per line (lines end at ``\\n``, ``\\r\\n`` or ``\\r``), line breaks
dropped; a line that is not UTF-8 is an error naming its file and line. The lines of a split are
one Arrow column made into a ``datasets.Dataset`` at once (``store.from_columns``). Hub: ``Salesforce/wikitext``,
config ``wikitext-103-v1`` (the tokenised files, ``<unk>``-ed like the release; not the ``raw``
one), one row per line of the same files with splits ``train``, ``validation``, ``test``, kept on
disk by ``lra_snn.data.download.fetch_hub``. Both give the splits ``train``, ``valid`` and ``test``
as ``datasets.Dataset``s with one column, ``text``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lra_snn.data import store
from lra_snn.data.download import check_saved_hub
from lra_snn.data.errors import DataFormatError, DataNotFoundError

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset

SPLITS = ("train", "valid", "test")
MAKE_TARGET = "make data-wikitext103"
ARCHIVE_FOLDER = "wikitext-103"  # the folder wikitext-103-v1.zip unpacks to
HUB_PATH = "Salesforce/wikitext"
HUB_CONFIG = "wikitext-103-v1"
HUB_SPLITS = {"train": "train", "valid": "validation", "test": "test"}
HUB_LAYOUT = {hub_split: ("text",) for hub_split in HUB_SPLITS.values()}  # what a Hub snapshot must have
COLUMNS: dict[str, store.Column] = {"text": "string"}
READ_CHUNK = 10 << 20  # characters read at a time (datasets' text loader reads 10 MB chunks)


def locate_source(source_dir: str | Path, files: dict[str, str]) -> Path:
    """The folder holding every split file: ``source_dir`` itself or the archive's ``wikitext-103/`` below it."""
    root = Path(source_dir)
    candidates = [root, root / ARCHIVE_FOLDER]
    for folder in candidates:
        if all((folder / name).is_file() for name in files.values()):
            return folder
    absent = [name for name in files.values() if not (root / name).is_file()]
    raise DataNotFoundError(
        root / absent[0],
        MAKE_TARGET,
        detail=f"looked for {', '.join(files.values())} in " + " and ".join(str(c) for c in candidates),
    )


def first_undecodable_line(path: Path) -> DataFormatError | None:
    """The error for the first line of ``path`` that is not UTF-8 (None if every line is)."""
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return DataFormatError(path, line_number, f"not valid UTF-8 ({error.reason} at byte {error.start})")
    return None


def read_lines(path: Path) -> pa.ChunkedArray:
    """The lines of ``path`` as one Arrow string column: read as UTF-8 text with universal newlines
    (``\\n``, ``\\r\\n`` and ``\\r`` end a line), line breaks dropped, as ``datasets``' ``text``
    loader reads a file; ``READ_CHUNK`` characters at a time, each completed to the end of its line.
    A line that is not UTF-8 is a ``DataFormatError`` naming its file and line."""
    import pyarrow as pa

    chunks = []
    try:
        with open(path, encoding="utf-8") as handle:
            while chunk := handle.read(READ_CHUNK):
                chunk += handle.readline()
                lines = chunk.split("\n")
                if chunk.endswith("\n"):
                    lines.pop()  # the empty text after the last line break
                chunks.append(pa.array(lines, type=pa.string()))
    except UnicodeDecodeError as error:  # a UTF-8 sequence never spans a "\\n", so some line fails too
        raise (first_undecodable_line(path) or error) from None
    return pa.chunked_array(chunks, type=pa.string())


def has_words(path: Path) -> bool:
    """Whether ``path`` has a line that is not blank (reading stops at the first such line)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return any(line.strip() for line in handle)


def release_dataset(folder: Path, files: dict[str, str]) -> dict[str, Dataset]:
    """The lines of the three split files in ``folder`` (``files``: split -> file name)."""
    paths = {split: folder / files[split] for split in SPLITS}
    for path in paths.values():
        if path.stat().st_size == 0:
            raise DataFormatError(path, 1, "the file holds no lines")
        if not has_words(path):
            raise DataFormatError(path, 1, "the file holds only blank lines: no word to train or test on")
    return {
        split: store.from_columns({"text": read_lines(path)}, COLUMNS, f"lines-{split}")
        for split, path in paths.items()
    }


def hub_dataset(snapshot: Path) -> dict[str, Dataset]:
    """The lines of a Hub snapshot (``fetch_hub`` of ``Salesforce/wikitext``, ``wikitext-103-v1``)."""
    from datasets import load_from_disk

    loaded = load_from_disk(str(snapshot))
    check_saved_hub(loaded, snapshot, HUB_LAYOUT, MAKE_TARGET)
    result = {}
    for split, hub_split in HUB_SPLITS.items():
        result[split] = loaded[hub_split].select_columns(["text"])
    return result
