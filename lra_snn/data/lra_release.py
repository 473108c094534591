"""The official LRA release (Tay et al. 2020): ``make data-lra`` (``lra_snn.cli.lra_release``) fetches
``lra_release.gz`` and unpacks the folders the benchmark reads into ``<data_dir>/lra_release/``.

The archive is a gzipped tar (about 7.7 GB) from the LRA authors' bucket; they publish no checksum,
so ``fetch_source`` records the SHA-256 of the first complete download beside it
(``lra_release.gz.sha256.json``) and verifies the file against it on every later call. Nothing is recorded
before the download has been read whole and found to hold the four task folders (``check_release_archive``):
an error page or another archive saved under the release's name is refused, naming it, and a later genuine
download is not measured against it. The copies the LRA repository's own setup script reads sit under
``lra_release/lra_release/``:

- ``listops-1000/basic_{train,val,test}.tsv`` (ListOps),
- ``tsv_data/new_aan_pairs.{train,eval,test}.tsv`` (Retrieval),
- ``pathfinder32/<difficulty>/{imgs,metadata}/`` (Pathfinder) and ``pathfinder128/...`` (Path-X).

Only these four folders are unpacked (not ``pathfinder64``, ``pathfinder256`` or the copies at the
archive's top level), each to ``<release_dir>/<folder>/``, with the safe extraction of
``lra_snn.data.download.extract`` (one pass over the archive; a folder appears only once complete,
and a folder already present is not unpacked again). The data configs' ``release_dir`` defaults to
``<data_dir>/lra_release``, where the task modules' locators find these folders.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from lra_snn.data.download import (
    SOURCES,
    ArchiveError,
    check_complete_archive,
    extract,
    fetch_source,
    pinned_file_advice,
)

log = logging.getLogger(__name__)

MAKE_TARGET = "make data-lra"
GENERATE_OVERRIDE = "data.source=generate"  # what a task with a generator can use instead of the release
SOURCE_NAME = "lra_release"  # the key of lra_snn.data.download.SOURCES
RELEASE_FOLDER = "lra_release"  # <data_dir>/lra_release
ARCHIVE_ROOT = "lra_release/lra_release"  # where the archive keeps the copies the LRA repository reads
FOLDERS = {"listops": "listops-1000", "retrieval": "tsv_data", "pathfinder": "pathfinder32", "pathx": "pathfinder128"}


def default_release_dir(data_dir: str | Path) -> Path:
    """Where ``make data-lra`` unpacks the release: ``<data_dir>/lra_release``."""
    return Path(data_dir) / RELEASE_FOLDER


def archive_folder(name: str) -> str | None:
    """The task folder (``listops-1000``, ...) an archive member belongs to, or None for any other member."""
    root, _, rest = name.partition(ARCHIVE_ROOT + "/")
    folder, _, inner = rest.partition("/")
    return folder if not root and inner and folder in FOLDERS.values() else None


def check_release_archive(archive: Path) -> None:
    """``ArchiveError`` naming ``archive`` unless it reads whole as a gzip / tar (``check_complete_archive``) and
    holds a file in every task folder under ``lra_release/lra_release/``: what ``fetch_release`` checks before the
    archive's SHA-256 is recorded."""
    found: set[str | None] = set()
    check_complete_archive(archive, visit=lambda name: found.add(archive_folder(posixpath.normpath(name))))
    refuse_absent_folders(archive, [folder for folder in FOLDERS.values() if folder not in found])


def refuse_absent_folders(archive: Path, absent: Sequence[str]) -> None:
    """``ArchiveError`` naming ``archive`` and the task folders ``absent`` from it, if any."""
    if absent:
        raise ArchiveError(
            archive,
            f"holds no {', '.join(f'{ARCHIVE_ROOT}/{folder}/' for folder in absent)}: it is not the LRA release "
            f"(lra_release.gz); delete it and run `{MAKE_TARGET}` to download it again",
        )


def unpack(archive: str | Path, release_dir: str | Path, folders: Sequence[str] = tuple(FOLDERS.values())) -> Path:
    """Unpack the chosen task ``folders`` of the release ``archive`` into ``release_dir/<folder>/``; return
    ``release_dir``. Folders already there are kept as they are (delete one to unpack it again)."""
    release_dir = Path(release_dir)
    unknown = sorted(set(folders) - set(FOLDERS.values()))
    if unknown:
        raise ValueError(f"unknown LRA release folders {unknown}; known: {sorted(FOLDERS.values())}")
    missing = [folder for folder in folders if not (release_dir / folder).is_dir()]
    if not missing:
        log.info("%s already holds %s; nothing to unpack", release_dir, ", ".join(folders))
        return release_dir
    release_dir.mkdir(parents=True, exist_ok=True)
    staging = release_dir / f".unpacking-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        extract(
            Path(archive),
            staging,
            members=lambda name: archive_folder(name) in missing,
            relocate=lambda name: name.removeprefix(ARCHIVE_ROOT + "/"),
        )
        refuse_absent_folders(Path(archive), [folder for folder in missing if not (staging / folder).is_dir()])
        for folder in missing:
            os.replace(staging / folder, release_dir / folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("unpacked %s of %s into %s", ", ".join(missing), archive, release_dir)
    return release_dir


def fetch_release(
    data_dir: str | Path, release_dir: str | Path | None = None, folders: Sequence[str] = tuple(FOLDERS.values())
) -> Path:
    """Download ``<data_dir>/downloads/lra_release.gz`` (or check the one there against its recorded SHA-256)
    and unpack ``folders`` into ``release_dir`` (default ``<data_dir>/lra_release``); return ``release_dir``.
    Needs the network on first use only; with every folder unpacked and the archive deleted, does nothing.
    An archive that matches its record yet cannot be unpacked is refused naming the record and both files to
    delete (``ArchiveError``)."""
    target = default_release_dir(data_dir) if release_dir is None else Path(release_dir)
    downloads = Path(data_dir) / "downloads"
    unpacked = all((target / folder).is_dir() for folder in folders)
    if unpacked and not (downloads / SOURCES[SOURCE_NAME].filename).is_file():
        return target  # unpacked, and the archive deleted to free the disk: nothing to check or read
    archive = fetch_source(SOURCE_NAME, downloads, check=check_release_archive)  # or checks it against its record
    try:
        return unpack(archive, target, folders)
    except ArchiveError as error:
        raise ArchiveError(archive, f"{error.problem}. {pinned_file_advice(archive)}") from None
