"""Resumable, verified downloads, safe archive reading/extraction, and Hugging Face Hub snapshots.

``fetch`` streams a URL into ``<dest>.part``, resuming an earlier partial file with an HTTP Range
request, checks the size and the checksums given, and only then renames the file to ``dest``: a
file under its final name is always complete and verified. ``extract`` unpacks a tar (any
compression) or zip archive into a hidden sibling of the target folder and renames it into place
when every member is written, refusing absolute paths, ``..`` components, links and special files.
``iter_archive_files`` and ``reading_archive`` let a reader stream members without extracting them.
``SOURCES`` records the canonical public files of the benchmark with their published sizes and
checksums; ``fetch_source`` pins a source that publishes none (the LRA release) by recording the
SHA-256 of its first download in ``<file>.sha256.json`` beside it, and checks every later use
against it. ``fetch_hub`` keeps a Hub dataset's splits on disk (``datasets.load_dataset`` then
``save_to_disk``). Nothing here runs at import time or from training code (only ``make data-<task>``).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import logging
import lzma
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from lra_snn.data.errors import DataNotFoundError

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
RECORD_SUFFIX = (
    ".sha256.json"  # beside a download whose source publishes no checksum: the SHA-256 of its first download
)
TIMEOUT_S = 60  # seconds without data before a connection is given up (the partial file is kept)

# Exceptions the standard library raises on a truncated or corrupt tar/zip/gzip/xz stream.
ARCHIVE_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)


@dataclass(frozen=True)
class Source:
    """A canonical public file: where it lives, its file name, and its size/checksums where known."""

    url: str
    filename: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    note: str = ""


SOURCES: dict[str, Source] = {
    "lra_release": Source(
        url="https://storage.googleapis.com/long-range-arena/lra_release.gz",
        filename="lra_release.gz",
        note="a gzipped tar despite its name, about 7.7 GB packed and 19 GB unpacked, nesting as "
        "lra_release/lra_release/...; the LRA authors publish neither its exact size nor a checksum",
    ),
    "imdb": Source(
        url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        filename="aclImdb_v1.tar.gz",
        size=84_125_825,
        md5="7c2ac02c03563afcf9b574c7e56c153a",
        sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
        note="size and checksums as recorded by torchtext (md5) and TensorFlow Datasets (sha256)",
    ),
    "cifar10": Source(
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        filename="cifar-10-python.tar.gz",
        size=170_498_071,
        md5="c58f30108f718f92721af3b95e74349a",
        note="md5 published on the CIFAR page",
    ),
    # The S3 bucket below is the copy the WikiText papers and torchtext used; it may be gone (it has
    # answered 403/404 at times since the bucket's owner changed). If so, place wikitext-103-v1.zip
    # (same md5) in <data_dir>/downloads/ by hand.
    "wikitext103": Source(
        url="https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-v1.zip",
        filename="wikitext-103-v1.zip",
        md5="9ddaacaf6af0710eda8c456decff7832",
        note="md5 as recorded by torchtext; the S3 mirror may no longer answer",
    ),
}


def first_existing(candidates: Sequence[str | Path], make_target: str, what: str) -> Path:
    """The first of ``candidates`` (an archive or an unpacked folder of ``what``) that exists; else
    ``DataNotFoundError`` naming every place looked at and ``make_target``."""
    paths = [Path(candidate) for candidate in candidates]
    if not paths:
        raise ValueError(f"archives must list at least one candidate path ({what})")
    for path in paths:
        if path.exists():
            return path
    raise DataNotFoundError(paths[0], make_target, detail="looked for " + ", ".join(str(path) for path in paths))


class DownloadError(OSError):
    """A download failed; the message names the URL and the file, and says whether a retry resumes."""


class ChecksumError(DownloadError):
    """A downloaded file's size or checksum differs from the expected one."""


class ArchiveError(ValueError):
    """An archive is truncated, corrupt or holds unsafe members; the message names the archive."""

    def __init__(self, archive: str | Path, problem: str) -> None:
        self.archive = Path(archive)
        self.problem = problem
        super().__init__(f"archive {self.archive}: {problem}")


# --------------------------------------------------------------------------- downloads


def fetch_source(name: str, downloads_dir: str | Path, check: Callable[[Path], None] | None = None) -> Path:
    """Download ``SOURCES[name]`` into ``downloads_dir``, verified with its published size and checksums.

    A source that publishes no checksum is pinned on first use: once the file is complete and passes ``check``
    (by default ``check_complete_archive``: a gzip / tar archive, every tar member and the gzip checksum at its
    end; a caller adds what the file must hold), its size and SHA-256 are written to ``<file>.sha256.json``
    (``recorded_checksum``), and every later call verifies the file against that record (``ChecksumError``
    naming both files and the two ways out when it differs). A first download that fails ``check`` is refused
    before anything is recorded.
    """
    if name not in SOURCES:
        raise KeyError(f"unknown source {name!r}; known sources: {sorted(SOURCES)}")
    source = SOURCES[name]
    dest = Path(downloads_dir) / source.filename
    pinned = source.sha256 is None and source.md5 is None
    record = recorded_checksum(dest) if pinned else None
    try:
        path = fetch(
            source.url,
            dest,
            sha256=source.sha256 or (record or {}).get("sha256"),
            md5=source.md5,
            expected_size=source.size or (record or {}).get("size"),
        )
    except ChecksumError as error:
        if record is None:
            raise
        record_path = Path(str(dest) + RECORD_SUFFIX)
        raise ChecksumError(
            f"{error}. The expected value is the one recorded in {record_path} when the first complete download "
            f"was checked. Either this download is damaged: delete {dest} and run again; or the published file "
            f"has changed and you trust the new one: delete {record_path}, and its checksum is recorded anew"
        ) from None
    if pinned and record is None:
        (check or check_complete_archive)(path)
        _record_checksum(path, source.url)
    return path


def pinned_file_advice(path: str | Path) -> str:
    """What to do when the download ``path``, pinned by ``fetch_source``, matches its record yet cannot be used (the
    record pinned a wrong file): a sentence naming both files, each to delete."""
    record_path = Path(str(path) + RECORD_SUFFIX)
    return (
        f"{path} matches the size and SHA-256 recorded in {record_path}, so that record pinned this unusable file: "
        f"delete both {path} (so that it is downloaded again) and {record_path} (so that the new download is "
        f"trusted and its checksum recorded anew), then run again"
    )


def check_complete_archive(path: Path, visit: Callable[[str], None] | None = None, chunk_size: int = 1 << 20) -> None:
    """Read the gzip / tar archive ``path`` whole: every tar member to the end-of-archive marker, then the rest
    of the gzip stream, whose CRC-32 and length are checked at its end; ``visit`` is called with the name of
    every regular file on the way. ``ArchiveError`` names the file when it is neither gzip nor tar (e.g. an
    error page saved in its place), cut short or corrupt."""
    with open(path, "rb") as probe:
        start = probe.read(16)
    is_gzip = start[:2] == b"\x1f\x8b"
    if not is_gzip and not tarfile.is_tarfile(path):
        raise ArchiveError(
            path,
            f"neither gzip nor tar ({path.stat().st_size} bytes, beginning {start!r}); it is not the file "
            f"expected here: delete it and download it again",
        )
    with reading_archive(path), open(path, "rb") as raw:
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw) if is_gzip else raw)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:  # each member's data is read past on the way to the next header
                if visit is not None and member.isfile():
                    visit(member.name)
        while stream.read(chunk_size):  # the gzip trailer (CRC-32, length) is checked at the end of the stream
            pass


def recorded_checksum(path: str | Path) -> dict | None:
    """The size and SHA-256 recorded for the download ``path`` (its ``.sha256.json``), or None if none is."""
    record_path = Path(str(path) + RECORD_SUFFIX)
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        size, sha256 = record["size"], record["sha256"]
    except (ValueError, KeyError, TypeError) as error:
        raise ChecksumError(
            f"{record_path} is not a checksum record ({type(error).__name__}: {error}); delete it and {path} "
            f"to download again"
        ) from None
    if not (isinstance(size, int) and isinstance(sha256, str) and len(sha256) == 64):
        raise ChecksumError(f"{record_path} holds no valid size and sha256; delete it and {path} to download again")
    return {"size": size, "sha256": sha256}


def _record_checksum(path: Path, url: str) -> None:
    """Write the size and SHA-256 of the complete download ``path`` to its ``.sha256.json`` (atomically)."""
    record = {"url": url, "file": path.name, "size": path.stat().st_size, **file_digests(path, ("sha256",))}
    record_path = Path(str(path) + RECORD_SUFFIX)
    staging = record_path.with_name(f".{record_path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
    staging.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(staging, record_path)
    log.info("recorded the SHA-256 of %s in %s: later uses are checked against it", path, record_path)


def fetch(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    expected_size: int | None = None,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest`` unless ``dest`` exists, and return ``dest``.

    Bytes go to ``dest`` + ".part"; a part file left by an interrupted call is resumed (HTTP Range;
    a server that ignores Range restarts it). The finished file is checked against
    ``expected_size``, ``sha256`` and ``md5`` (each when given) and renamed to ``dest``; on a
    mismatch the part file is deleted and ``ChecksumError`` raised. A file already at ``dest`` is
    verified the same way and, if it differs, reported (never deleted). ``file://`` URLs work.
    """
    dest = Path(dest)
    if dest.is_file():
        _verify(dest, url, sha256=sha256, md5=md5, expected_size=expected_size)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + PART_SUFFIX)
    _download_into(url, part, expected_size, chunk_size)
    try:
        _verify(part, url, sha256=sha256, md5=md5, expected_size=expected_size)
    except ChecksumError:
        part.unlink()
        raise
    os.replace(part, dest)
    log.info("downloaded %s -> %s (%d bytes)", url, dest, dest.stat().st_size)
    return dest


def _download_into(url: str, part: Path, expected_size: int | None, chunk_size: int) -> None:
    """Append the rest of ``url`` to ``part`` (or rewrite it when the server cannot resume)."""
    offset = part.stat().st_size if part.is_file() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()  # longer than the file can be: not a prefix of it
        offset = 0
    if expected_size is not None and offset == expected_size:
        return
    opened = _open_from(url, offset)
    if opened is None:  # the server says the part file already holds every byte
        return
    stream, start = opened
    written = start
    try:
        with stream, open(part, "ab" if start else "wb") as handle:
            if offset and not start:
                log.info("%s does not support resuming; downloading it again", url)
            while chunk := stream.read(chunk_size):
                handle.write(chunk)
                written += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    except (OSError, http.client.HTTPException) as error:
        raise DownloadError(
            f"download of {url} interrupted after {written} bytes ({error}); the partial file {part} is kept "
            f"and the next call resumes it"
        ) from error


def _open_from(url: str, offset: int) -> tuple[IO[bytes], int] | None:
    """A byte stream of ``url`` and the offset it starts at (``offset`` if resumed, else 0).

    None when the server answers that the part file already holds every byte (HTTP 416 with a
    total size equal to ``offset``).
    """
    scheme = urllib.parse.urlparse(url).scheme
    if scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        if not path.is_file():
            raise DownloadError(f"cannot download {url}: {path} does not exist")
        start = offset if offset <= path.stat().st_size else 0  # a longer part file is no prefix of it
        handle = open(path, "rb")  # noqa: SIM115 - the caller reads and closes it
        handle.seek(start)
        return handle, start
    if scheme not in ("http", "https"):
        raise DownloadError(f"cannot download {url}: only http, https and file URLs are supported")
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            if _total_size(error.headers.get("Content-Range", "")) == offset:
                return None
            return _open_from(url, 0)  # the part file is longer than the file: not a prefix of it
        raise DownloadError(f"cannot download {url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise DownloadError(f"cannot download {url}: {error}") from error
    resumed = response.status == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {offset}-")
    return response, offset if resumed else 0


def _total_size(content_range: str) -> int | None:
    """The total size in a ``Content-Range: bytes */<total>`` header, or None when absent."""
    total = content_range.rpartition("/")[2]
    return int(total) if total.isdigit() else None


def _verify(path: Path, url: str, *, sha256: str | None, md5: str | None, expected_size: int | None) -> None:
    """Check ``path`` against the expected size and checksums; ``ChecksumError`` names what differs."""
    size = path.stat().st_size
    if expected_size is not None and size < expected_size and path.suffix == PART_SUFFIX:
        raise DownloadError(
            f"download of {url} ended after {size} of {expected_size} bytes; the partial file {path} is kept "
            f"and the next call resumes it"
        )
    if expected_size is not None and size != expected_size:
        raise _mismatch(path, url, f"size {size} bytes, expected {expected_size}")
    wanted = {name: value.lower() for name, value in (("sha256", sha256), ("md5", md5)) if value}
    if not wanted:
        return
    found = file_digests(path, tuple(wanted))
    for name, value in wanted.items():
        if found[name] != value:
            raise _mismatch(path, url, f"{name} {found[name]}, expected {value}")


def _mismatch(path: Path, url: str, problem: str) -> ChecksumError:
    if path.suffix == PART_SUFFIX:
        return ChecksumError(f"download of {url} is corrupt ({problem}); deleted {path}, run again to retry")
    return ChecksumError(
        f"{path} (from {url}) differs from the published file ({problem}); delete it to download again"
    )


def file_digests(path: str | Path, algorithms: tuple[str, ...], chunk_size: int = 1 << 20) -> dict[str, str]:
    """Hex digests of ``path`` for each hashlib algorithm name in ``algorithms``, in one pass."""
    hashes = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            for digest in hashes.values():
                digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in hashes.items()}


# --------------------------------------------------------------------------- archives


@contextmanager
def reading_archive(archive: str | Path) -> Iterator[None]:
    """Turn the errors of reading a truncated or corrupt archive into ``ArchiveError`` naming it."""
    try:
        yield
    except ARCHIVE_READ_ERRORS as error:
        raise ArchiveError(
            archive, f"truncated or corrupt ({type(error).__name__}: {error}); delete it and download it again"
        ) from error


def member_path(archive: str | Path, name: str) -> str:
    """The normalised relative path of archive member ``name`` ("a/./b" -> "a/b"); ``ArchiveError`` if it
    is absolute, names a drive or climbs out of the target folder with ``..``."""
    posix = name.replace("\\", "/")
    parts = [part for part in posix.split("/") if part not in ("", ".")]
    if posix.startswith("/") or ".." in parts or not parts or ":" in parts[0]:
        raise ArchiveError(archive, f"member {name!r} would be written outside the target folder; refusing it")
    return "/".join(parts)


def iter_archive_files(
    archive: str | Path, members: Callable[[str], bool] | None = None
) -> Iterator[tuple[str, IO[bytes]]]:
    """Yield ``(relative path, readable stream)`` for every regular file of a tar or zip archive.

    ``members`` filters on the relative path. A stream is valid until the next item. A selected
    link or special file is an ``ArchiveError``. Wrap the loop in ``reading_archive(archive)`` so
    that read errors name the archive.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    with reading_archive(archive):
        is_zip = zipfile.is_zipfile(archive)
    if is_zip:
        yield from _iter_zip_files(archive, members)
    else:
        yield from _iter_tar_files(archive, members)


def _iter_tar_files(archive: Path, members: Callable[[str], bool] | None) -> Iterator[tuple[str, IO[bytes]]]:
    with reading_archive(archive):
        tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed by the `with tar` below; one forward
        # pass, after which gzip checks its length and CRC
    with tar:
        while True:
            with reading_archive(archive):
                member = tar.next()
            if member is None:
                _check_end_of_archive(tar, archive)
                return
            tar.members = []  # type: ignore[attr-defined]  # one forward pass needs no index; the LRA release holds about a million members
            if member.isdir():
                continue
            name = member_path(archive, member.name)
            if members is not None and not members(name):
                continue
            if not member.isfile():
                raise ArchiveError(archive, f"member {member.name!r} is a link or special file; refusing it")
            with reading_archive(archive):
                stream = tar.extractfile(member)
            if stream is None:
                raise ArchiveError(archive, f"member {member.name!r} could not be read as a file")
            yield name, stream


def _check_end_of_archive(tar: tarfile.TarFile, archive: Path) -> None:
    """Check that the archive ends with zero blocks and an intact compressed trailer.

    ``tarfile`` ends its listing silently at a missing or damaged header after the first one, so
    an archive cut at a member boundary, or with a damaged header, would otherwise read as a
    shorter complete archive; reading the compressed stream to its end also checks its CRC.
    """
    with reading_archive(archive):
        tar.fileobj.seek(tar.offset)
        rest = 0
        while chunk := tar.fileobj.read(1 << 20):
            if chunk.count(0) != len(chunk):
                raise ArchiveError(
                    archive,
                    f"damaged member header at byte {tar.offset} of the tar stream; delete it and download it again",
                )
            rest += len(chunk)
    if rest == 0:
        raise ArchiveError(
            archive, "ends without the end-of-archive marker (truncated); delete it and download it again"
        )


def _iter_zip_files(archive: Path, members: Callable[[str], bool] | None) -> Iterator[tuple[str, IO[bytes]]]:
    with reading_archive(archive), zipfile.ZipFile(archive) as zip_file:
        infos = zip_file.infolist()
    with zipfile.ZipFile(archive) as zip_file:
        for info in infos:
            if info.is_dir():
                continue
            name = member_path(archive, info.filename)
            if members is not None and not members(name):
                continue
            with reading_archive(archive):
                stream = zip_file.open(info)
            with stream:
                yield name, stream


def extract(
    archive: Path,
    dest_dir: Path,
    members: Callable[[str], bool] | None = None,
    relocate: Callable[[str], str] | None = None,
) -> Path:
    """Unpack the regular files of ``archive`` (tar, any compression, or zip) into ``dest_dir``.

    ``members`` selects files by their relative path; ``relocate`` maps a selected path to the one
    it gets below ``dest_dir`` (e.g. without the archive's top folders), checked like a member name.
    Files are written into a hidden sibling folder that is renamed to ``dest_dir`` only when every
    selected member is written, so ``dest_dir`` is either absent or complete; a non-empty
    ``dest_dir`` is returned as it is (delete it to extract again). A truncated or corrupt archive,
    or one whose selection is empty, raises ``ArchiveError`` and leaves ``dest_dir`` untouched.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if dest_dir.is_dir() and any(dest_dir.iterdir()):
        log.info("%s already holds files; not extracting %s again", dest_dir, archive)
        return dest_dir
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = dest_dir.parent / f".{dest_dir.name}.extracting-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        count = _write_members(archive, staging, members, relocate)
        if count == 0:
            raise ArchiveError(archive, "no member matched the selection; nothing extracted")
        if dest_dir.is_dir():
            dest_dir.rmdir()  # empty (checked above)
        os.replace(staging, dest_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("extracted %d files of %s into %s", count, archive, dest_dir)
    return dest_dir


def _write_members(
    archive: Path, target: Path, members: Callable[[str], bool] | None, relocate: Callable[[str], str] | None
) -> int:
    """Copy every selected regular file of ``archive`` below ``target`` (at ``relocate(name)``); return how many."""
    count = 0
    with reading_archive(archive):
        for name, stream in iter_archive_files(archive, members):
            path = target / (member_path(archive, relocate(name)) if relocate else name)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as handle:
                shutil.copyfileobj(stream, handle, 1 << 20)
            count += 1
    return count


# --------------------------------------------------------------------------- the Hugging Face Hub


def missing_layout(loaded: Any, required: Mapping[str, Sequence[str]]) -> list[str]:
    """What a loaded Hub ``DatasetDict`` lacks of ``required`` (split -> columns): one phrase per split."""
    problems = []
    for split, columns in required.items():
        if split not in loaded:
            problems.append(f"no {split} split (it has {', '.join(sorted(loaded)) or 'none'})")
            continue
        absent = [column for column in columns if column not in loaded[split].column_names]
        if absent:
            problems.append(
                f"its {split} split has no {', '.join(absent)} column (it has {loaded[split].column_names})"
            )
    return problems


def fetch_hub(
    repository: str, config: str | None, dest: str | Path, required: Mapping[str, Sequence[str]] | None = None
) -> Path:
    """Download a Hugging Face Hub dataset and keep its splits at ``dest`` (``save_to_disk``); return ``dest``.

    ``repository`` is a Hub id (``stanfordnlp/imdb``) or a local folder laid out like a Hub
    repository, which ``datasets.load_dataset`` reads the same way; ``config`` names its subset.
    ``required`` (split -> columns) is checked before anything is saved: a dataset without them is
    refused (``DownloadError`` naming what it lacks) and leaves nothing behind. Downloads go to a hidden
    sibling of ``dest`` that is deleted afterwards, and the splits appear under ``dest`` only once
    complete. A ``dest`` that holds a saved dataset is returned as it is.
    """
    from datasets import load_dataset

    dest = Path(dest)
    if (dest / "dataset_dict.json").is_file():
        log.info("%s already holds %s; not downloading it again", dest, repository)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.fetching-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        try:
            loaded = load_dataset(repository, config, cache_dir=str(staging / "work"))
        except Exception as error:  # datasets raises many kinds (connection, missing repository or config)
            raise DownloadError(
                f"cannot load {repository!r} (config {config!r}) from the Hugging Face Hub: "
                f"{type(error).__name__}: {error}"
            ) from error
        problems = missing_layout(loaded, required or {})
        if problems:
            raise DownloadError(
                f"{repository!r} (config {config!r}) is not laid out as this task reads it: {'; '.join(problems)}; "
                f"nothing was saved. Point data.hub_path (and data.hub_config) at a dataset with "
                f"{', '.join(f'a {split} split of {list(columns)}' for split, columns in (required or {}).items())}"
            )
        loaded.save_to_disk(str(staging / "splits"))
        if dest.is_dir():
            dest.rmdir()  # empty: a saved dataset would have been returned above
        os.replace(staging / "splits", dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("saved %s (config %s) to %s", repository, config, dest)
    return dest


def hub_folder(downloads_dir: str | Path, repository: str, config: str) -> Path:
    """Where ``fetch_hub`` keeps a Hub dataset: ``<downloads_dir>/hub/<owner>__<name>/<config>``."""
    return Path(downloads_dir) / "hub" / repository.strip("/").replace("/", "__") / config


def check_saved_hub(loaded: Any, snapshot: Path, required: Mapping[str, Sequence[str]], make_target: str) -> None:
    """``DataNotFoundError`` when a saved snapshot lacks ``required`` (saved before this check existed, or
    edited): its advice removes the snapshot first, so the command fetches it again instead of reading it."""
    problems = missing_layout(loaded, required)
    if problems:
        raise DataNotFoundError(
            snapshot,
            f'rm -r {snapshot} && {make_target} ARGS="data.source=hub"',
            detail=f"the saved Hub snapshot is not laid out as this task reads it: {'; '.join(problems)}",
        )


def saved_hub(folder: Path, repository: str, config: str, make_target: str) -> Path:
    """``folder`` if ``fetch_hub`` saved a dataset there; else ``DataNotFoundError`` naming the command."""
    if not (folder / "dataset_dict.json").is_file():
        raise DataNotFoundError(
            folder,
            f'{make_target} ARGS="data.source=hub"',
            detail=f"the Hub dataset {repository} ({config}) is not downloaded",
        )
    return folder
