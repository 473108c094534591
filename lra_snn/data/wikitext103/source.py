"""Where WikiText-103 lines (Merity et al. 2016) come from: the release's token files or the Hub.

Release: ``wiki.{train,valid,test}.tokens`` (in ``wikitext-103-v1.zip``), read with ``datasets``'
``text`` loader: one row per line (lines end at ``\\n``, ``\\r\\n`` or ``\\r``), line breaks
dropped; a line that is not UTF-8 is an error naming its file and line. Hub: ``Salesforce/wikitext``,
config ``wikitext-103-v1`` (the tokenised files, ``<unk>``-ed like the release; not the ``raw``
one), one row per line of the same files with splits ``train``, ``validation``, ``test``, kept on
disk by ``lra_snn.data.download.fetch_hub``. Both give the splits ``train``, ``valid`` and ``test``
as ``datasets.Dataset``s with one column, ``text``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lra_snn.data import store
from lra_snn.data.errors import DataFormatError, DataNotFoundError

if TYPE_CHECKING:
    from datasets import Dataset

SPLITS = ("train", "valid", "test")
MAKE_TARGET = "make data-wikitext103"
ARCHIVE_FOLDER = "wikitext-103"  # the folder wikitext-103-v1.zip unpacks to
HUB_PATH = "Salesforce/wikitext"
HUB_CONFIG = "wikitext-103-v1"
HUB_SPLITS = {"train": "train", "valid": "validation", "test": "test"}


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


def _caused_by_decoding(error: BaseException) -> bool:
    """Whether a ``UnicodeDecodeError`` is ``error`` or in its chain of causes."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, UnicodeDecodeError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def release_dataset(folder: Path, files: dict[str, str], staging: Path) -> dict[str, Dataset]:
    """The lines of the three split files in ``folder`` (``files``: split -> file name)."""
    from datasets import load_dataset

    paths = {split: folder / files[split] for split in SPLITS}
    for path in paths.values():
        if path.stat().st_size == 0:
            raise DataFormatError(path, 1, "the file holds no lines")
    try:
        loaded = load_dataset(
            "text",
            data_files={split: str(path) for split, path in paths.items()},
            cache_dir=str(store.scratch(staging)),
        )
    except Exception as error:  # datasets wraps what the reader raised
        if not _caused_by_decoding(error):
            raise
        for path in paths.values():
            located = first_undecodable_line(path)
            if located is not None:
                raise located from None
        raise
    return {split: loaded[split] for split in SPLITS}


def hub_dataset(snapshot: Path) -> dict[str, Dataset]:
    """The lines of a Hub snapshot (``fetch_hub`` of ``Salesforce/wikitext``, ``wikitext-103-v1``)."""
    from datasets import load_from_disk

    loaded = load_from_disk(str(snapshot))
    result = {}
    for split, hub_split in HUB_SPLITS.items():
        if hub_split not in loaded or "text" not in loaded[hub_split].column_names:
            raise DataNotFoundError(
                snapshot,
                f'{MAKE_TARGET} ARGS="data.source=hub"',
                detail=f"the snapshot lacks a {hub_split} split with a text column",
            )
        result[split] = loaded[hub_split].select_columns(["text"])
    return result
