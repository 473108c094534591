"""Downloads (resume, verification, atomic rename) and archive extraction (safety, atomicity, corrupt
archives), all against local files: ``file://`` URLs and a localhost HTTP server (data.md, "Caching and downloads")."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from lra_snn.data import download
from lra_snn.data.download import ArchiveError, ChecksumError, DownloadError, extract, fetch


@pytest.fixture
def payload() -> bytes:
    return np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()


@pytest.fixture
def served(tmp_path: Path, payload: bytes) -> tuple[str, Path]:
    """``payload`` written to a file, and its file:// URL."""
    source = tmp_path / "server" / "blob.bin"
    source.parent.mkdir()
    source.write_bytes(payload)
    return source.as_uri(), source


def write_tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --------------------------------------------------------------------------- fetch


def test_fetch_verifies_and_renames_into_place(tmp_path: Path, served, payload: bytes) -> None:
    url, _ = served
    dest = tmp_path / "downloads" / "blob.bin"
    result = fetch(
        url,
        dest,
        sha256=hashlib.sha256(payload).hexdigest(),
        md5=hashlib.md5(payload).hexdigest().upper(),  # case does not matter
        expected_size=len(payload),
        chunk_size=4096,
    )
    assert result == dest and dest.read_bytes() == payload
    assert not dest.with_name("blob.bin.part").exists()


def test_fetch_resumes_a_partial_file(tmp_path: Path, served, payload: bytes) -> None:
    url, _ = served
    dest = tmp_path / "blob.bin"
    part = tmp_path / "blob.bin.part"
    # A prefix that differs from the source proves the first 1000 bytes were not downloaded again.
    part.write_bytes(b"\xff" * 1000)
    fetch(url, dest)
    assert dest.read_bytes() == b"\xff" * 1000 + payload[1000:]


def test_fetch_resumed_file_passes_the_checksum(tmp_path: Path, served, payload: bytes) -> None:
    url, _ = served
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(payload[:123_457])
    fetch(url, dest, sha256=hashlib.sha256(payload).hexdigest(), expected_size=len(payload))
    assert dest.read_bytes() == payload


def test_checksum_mismatch_deletes_the_part_file_and_names_url_and_file(tmp_path: Path, served) -> None:
    url, _ = served
    dest = tmp_path / "blob.bin"
    with pytest.raises(ChecksumError, match=re.escape(url)) as raised:
        fetch(url, dest, md5="0" * 32)
    assert str(dest) + ".part" in str(raised.value)
    assert not dest.exists() and not dest.with_name("blob.bin.part").exists()


def test_a_short_download_keeps_its_part_file_for_resuming(tmp_path: Path, served, payload: bytes) -> None:
    url, _ = served
    dest = tmp_path / "blob.bin"
    with pytest.raises(DownloadError, match=f"ended after {len(payload)} of {len(payload) + 10} bytes"):
        fetch(url, dest, expected_size=len(payload) + 10)
    assert not dest.exists() and dest.with_name("blob.bin.part").stat().st_size == len(payload)


def test_a_part_file_longer_than_the_source_is_discarded(tmp_path: Path, served, payload: bytes) -> None:
    url, _ = served
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(b"x" * (len(payload) + 5))
    fetch(url, dest, expected_size=len(payload))
    assert dest.read_bytes() == payload


def test_an_existing_file_is_verified_and_never_deleted(tmp_path: Path, served, payload: bytes) -> None:
    url, _ = served
    dest = tmp_path / "blob.bin"
    dest.write_bytes(payload)
    assert fetch(url, dest, md5=hashlib.md5(payload).hexdigest()) == dest
    dest.write_bytes(b"something else")
    with pytest.raises(ChecksumError, match="delete it to download again"):
        fetch(url, dest, md5=hashlib.md5(payload).hexdigest())
    assert dest.read_bytes() == b"something else"


def test_missing_source_and_unsupported_scheme_are_clear_errors(tmp_path: Path) -> None:
    missing = (tmp_path / "nothing.bin").as_uri()
    with pytest.raises(DownloadError, match="does not exist"):
        fetch(missing, tmp_path / "out.bin")
    with pytest.raises(DownloadError, match="only http, https and file URLs"):
        fetch("ftp://example.org/x.bin", tmp_path / "out.bin")


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``payload`` at /blob.bin; honours ``Range: bytes=N-`` unless ``honour_range`` is False."""

    payload = b""
    honour_range = True
    requests: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        if self.path != "/blob.bin":
            self.send_error(404)
            return
        wanted = self.headers.get("Range")
        type(self).requests.append(wanted)
        start = int(wanted[len("bytes=") : -1]) if wanted and self.honour_range else 0
        if start >= len(self.payload) and wanted:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(self.payload)}")
            self.end_headers()
            return
        body = self.payload[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server(payload: bytes) -> Iterator[tuple[str, type[_RangeHandler]]]:
    handler = type("Handler", (_RangeHandler,), {"payload": payload, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/blob.bin", handler
    finally:
        server.shutdown()
        server.server_close()


def test_http_download_resumes_with_a_range_request(tmp_path: Path, http_server, payload: bytes) -> None:
    url, handler = http_server
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(payload[:5000])
    fetch(url, dest, md5=hashlib.md5(payload).hexdigest())
    assert dest.read_bytes() == payload
    assert handler.requests == ["bytes=5000-"]


def test_http_server_without_range_support_restarts_the_download(tmp_path: Path, http_server, payload) -> None:
    url, handler = http_server
    handler.honour_range = False
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(b"\x00" * 5000)
    fetch(url, dest)
    assert dest.read_bytes() == payload


def test_http_complete_part_file_is_finished_without_downloading(tmp_path: Path, http_server, payload) -> None:
    url, handler = http_server
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(payload)
    fetch(url, dest, sha256=hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload
    assert handler.requests == [f"bytes={len(payload)}-"]


def test_http_error_status_names_the_url(tmp_path: Path, http_server) -> None:
    url, _ = http_server
    missing = url.replace("blob.bin", "missing.bin")
    with pytest.raises(DownloadError, match=re.escape(f"cannot download {missing}: HTTP 404")):
        fetch(missing, tmp_path / "missing.bin")
    assert not (tmp_path / "missing.bin.part").exists()


def test_sources_record_the_canonical_files() -> None:
    assert set(download.SOURCES) == {"lra_release", "imdb", "cifar10", "wikitext103"}
    for source in download.SOURCES.values():
        assert source.url.startswith("https://") and source.url.endswith("/" + source.filename)
    assert download.SOURCES["cifar10"].md5 == "c58f30108f718f92721af3b95e74349a"
    with pytest.raises(KeyError, match="known sources"):
        download.fetch_source("mnist", "downloads")


def test_fetch_source_uses_the_recorded_checksums(tmp_path: Path, monkeypatch, payload: bytes) -> None:
    source_file = tmp_path / "server" / "aclImdb_v1.tar.gz"
    source_file.parent.mkdir()
    source_file.write_bytes(payload)
    monkeypatch.setitem(
        download.SOURCES,
        "imdb",
        download.Source(url=source_file.as_uri(), filename="aclImdb_v1.tar.gz", size=len(payload), md5="1" * 32),
    )
    with pytest.raises(ChecksumError, match="md5"):
        download.fetch_source("imdb", tmp_path / "downloads")


# --------------------------------------------------------------------------- extract

FILES = {"release/tsv_data/a.tsv": b"1\ta\n", "release/tsv_data/b.tsv": b"0\tb\n", "release/other/c.png": b"png"}


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_extract_selected_members_atomically(tmp_path: Path, kind: str) -> None:
    archive = tmp_path / f"release.{kind}"
    if kind == "tar.gz":
        write_tar_gz(archive, FILES)
    else:
        with zipfile.ZipFile(archive, "w") as zip_file:
            for name, data in FILES.items():
                zip_file.writestr(name, data)
    out = extract(archive, tmp_path / "out", members=lambda name: "/tsv_data/" in name)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "release/tsv_data/a.tsv",
        "release/tsv_data/b.tsv",
    ]
    assert (out / "release/tsv_data/a.tsv").read_bytes() == FILES["release/tsv_data/a.tsv"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_extract_leaves_a_non_empty_target_as_it_is(tmp_path: Path) -> None:
    archive = write_tar_gz(tmp_path / "a.tar.gz", FILES)
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.txt").write_text("mine")
    assert extract(archive, out) == out
    assert [p.name for p in out.iterdir()] == ["kept.txt"]


@pytest.mark.parametrize(
    "name",
    ["../evil.txt", "/abs/evil.txt", "ok/../../evil.txt", "C:/evil.txt"],
    ids=["up", "absolute", "nested", "drive"],
)
def test_extract_refuses_paths_outside_the_target(tmp_path: Path, name: str) -> None:
    archive = write_tar_gz(tmp_path / "evil.tar.gz", {"fine.txt": b"x", name: b"evil"})
    with pytest.raises(ArchiveError, match=re.escape(f"member {name!r} would be written outside")):
        extract(archive, tmp_path / "box" / "out")
    assert not (tmp_path / "box" / "out").exists() and not (tmp_path / "evil.txt").exists()


def test_extract_refuses_links(tmp_path: Path) -> None:
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("data/passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(ArchiveError, match="link or special file"):
        extract(archive, tmp_path / "out")


@pytest.mark.parametrize("kind", ["truncated tar.gz", "garbage", "corrupt zip"])
def test_corrupt_archive_names_it_and_loses_nothing(tmp_path: Path, kind: str) -> None:
    big = {f"d/f{i}.bin": np.random.default_rng(i).bytes(50_000) for i in range(4)}
    archive = tmp_path / "archive.bin"
    if kind == "truncated tar.gz":
        full = write_tar_gz(tmp_path / "full.tar.gz", big).read_bytes()
        archive.write_bytes(full[: len(full) // 2])
    elif kind == "garbage":
        archive.write_bytes(b"not an archive at all" * 100)
    else:
        with zipfile.ZipFile(archive, "w") as zip_file:
            zip_file.writestr("d/f.bin", big["d/f0.bin"])
        data = bytearray(archive.read_bytes())
        data[100:200] = b"\x00" * 100  # inside the stored member's bytes: a CRC error on reading
        archive.write_bytes(bytes(data))
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "cache.npy").write_bytes(b"earlier work")
    with pytest.raises(ArchiveError, match=re.escape(str(archive))):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert (prepared / "cache.npy").read_bytes() == b"earlier work"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("compression", ["gz", ""], ids=["tar.gz", "tar"])
def test_a_tar_cut_anywhere_is_reported_never_read_as_shorter(tmp_path: Path, compression: str) -> None:
    files = {f"d/f{i}.bin": np.random.default_rng(i).bytes(3000) for i in range(6)}
    full = tmp_path / "full.tar"
    with tarfile.open(full, f"w:{compression}") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = full.read_bytes()
    member = 512 + 3072  # one member: a header block and its data padded to 512-byte blocks
    cuts = [member, 5 * member, 2 * member + 700]  # at member boundaries and inside one
    if compression:
        cuts = [len(data) // 3, len(data) // 2, len(data) - 9]  # compressed: anywhere, the CRC trailer included
    for cut in cuts:
        cut_file = tmp_path / f"cut_{cut}.tar"
        cut_file.write_bytes(data[:cut])
        with pytest.raises(ArchiveError, match=re.escape(str(cut_file))), download.reading_archive(cut_file):
            for _, stream in download.iter_archive_files(cut_file):
                stream.read()


def test_a_damaged_header_inside_a_tar_is_reported(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w:") as tar:
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = bytearray(archive.read_bytes())
    data[1024:1124] = b"\x07" * 100  # the second member's header
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="damaged member header"):
        extract(archive, tmp_path / "out")


def test_extract_with_an_empty_selection_is_an_error(tmp_path: Path) -> None:
    archive = write_tar_gz(tmp_path / "a.tar.gz", FILES)
    with pytest.raises(ArchiveError, match="no member matched"):
        extract(archive, tmp_path / "out", members=lambda name: name.endswith(".json"))
    assert not (tmp_path / "out").exists()


def pinned_source(monkeypatch, server_file: Path) -> None:
    """The LRA release (no published checksum: pinned at first download) served from ``server_file``."""
    monkeypatch.setitem(
        download.SOURCES, "lra_release", download.Source(url=server_file.as_uri(), filename="lra_release.gz")
    )


def test_a_damaged_first_download_is_refused_before_its_checksum_is_recorded(tmp_path: Path, monkeypatch) -> None:
    whole = write_tar_gz(tmp_path / "whole.tar.gz", FILES).read_bytes()
    server_file = tmp_path / "server" / "lra_release.gz"
    server_file.parent.mkdir()
    server_file.write_bytes(whole[: len(whole) - 9])  # cut inside the gzip trailer: every tar member is there
    pinned_source(monkeypatch, server_file)
    downloads = tmp_path / "downloads"
    with pytest.raises(ArchiveError, match=r"truncated or corrupt.*delete it and download it again") as refused:
        download.fetch_source("lra_release", downloads)
    assert str(downloads / "lra_release.gz") in str(refused.value)
    assert download.recorded_checksum(downloads / "lra_release.gz") is None  # nothing recorded
    # the advice: delete it and download again (the server now has the whole file)
    (downloads / "lra_release.gz").unlink()
    server_file.write_bytes(whole)
    path = download.fetch_source("lra_release", downloads)
    assert download.recorded_checksum(path) == {"size": len(whole), "sha256": hashlib.sha256(whole).hexdigest()}


def test_a_download_that_differs_from_its_record_names_the_record_and_both_ways_out(
    tmp_path: Path, monkeypatch
) -> None:
    first = write_tar_gz(tmp_path / "first.tar.gz", FILES).read_bytes()
    server_file = tmp_path / "server" / "lra_release.gz"
    server_file.parent.mkdir()
    server_file.write_bytes(first)
    pinned_source(monkeypatch, server_file)
    downloads = tmp_path / "downloads"
    path = download.fetch_source("lra_release", downloads)
    record = Path(str(path) + download.RECORD_SUFFIX)
    # the published file changes
    changed = write_tar_gz(tmp_path / "changed.tar.gz", {**FILES, "release/tsv_data/a.tsv": b"0\ta\n"}).read_bytes()
    server_file.write_bytes(changed)
    path.unlink()
    with pytest.raises(ChecksumError) as differs:
        download.fetch_source("lra_release", downloads)
    message = str(differs.value)
    assert f"recorded in {record}" in message
    assert f"delete {downloads / 'lra_release.gz'} and run again" in message
    assert f"delete {record}, and its checksum is recorded anew" in message
    # the second way out: trust the new file
    record.unlink()
    path = download.fetch_source("lra_release", downloads)
    assert download.recorded_checksum(path)["sha256"] == hashlib.sha256(changed).hexdigest()
