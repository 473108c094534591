"""`make data-lra` (lra_snn.data.lra_release) on a small archive in the release's layout, served from a
file:// URL: the SHA-256 of the first download is recorded and checked on every later call, the four
task folders (and nothing else) are unpacked from lra_release/lra_release/, and every task reads them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lra_snn.data import download, lra_release
from lra_snn.data.download import ArchiveError, ChecksumError, file_digests
from lra_snn.data.listops.module import ListOpsDataModule
from lra_snn.data.pathfinder.module import PathfinderDataModule
from lra_snn.data.retrieval.module import RetrievalDataModule
from tests.fakes import write_lra_archive, write_lra_release

FOLDERS = ("listops-1000", "tsv_data", "pathfinder32", "pathfinder128")
DECOYS = {
    "lra_release/listops-1000/basic_train.tsv": b"not the copy the LRA repository reads\n",
    "lra_release/lra_release/pathfinder64/curv_baseline/metadata/0.npy": b"a resolution the benchmark does not use\n",
}


@pytest.fixture(scope="module")
def release_files(tmp_path_factory) -> Path:
    return write_lra_release(tmp_path_factory.mktemp("release") / "files")


@pytest.fixture
def archive(tmp_path: Path, release_files: Path, monkeypatch) -> Path:
    """The fake ``lra_release.gz``, registered as the release's source (a file:// URL, no checksum published)."""
    path = write_lra_archive(tmp_path / "served" / "lra_release.gz", release_files, DECOYS)
    monkeypatch.setitem(download.SOURCES, "lra_release", download.Source(url=path.as_uri(), filename="lra_release.gz"))
    return path


def relative_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_make_data_lra_records_the_checksum_and_unpacks_the_four_task_folders(
    tmp_path: Path, archive: Path, release_files: Path
) -> None:
    data_dir = tmp_path / "data"
    release_dir = lra_release.fetch_release(data_dir)
    assert release_dir == data_dir / "lra_release"
    assert sorted(p.name for p in release_dir.iterdir()) == sorted(FOLDERS)  # no decoy, no staging left
    assert relative_files(release_dir) == relative_files(release_files)
    assert (release_dir / "listops-1000" / "basic_train.tsv").read_bytes() == (
        release_files / "listops-1000" / "basic_train.tsv"
    ).read_bytes()
    record = json.loads((data_dir / "downloads" / "lra_release.gz.sha256.json").read_text())
    assert record["sha256"] == file_digests(archive, ("sha256",))["sha256"]
    assert record["size"] == archive.stat().st_size and record["url"] == archive.as_uri()


def test_every_task_reads_the_unpacked_release(tmp_path: Path, archive: Path) -> None:
    data_dir = tmp_path / "data"
    release_dir = lra_release.fetch_release(data_dir)
    listops = ListOpsDataModule(data_dir=data_dir, source="release", release_dir=release_dir)
    retrieval = RetrievalDataModule(data_dir=data_dir, release_dir=release_dir)
    pathfinder = PathfinderDataModule(data_dir=data_dir, source="release", release_dir=release_dir, resolution=32)
    pathx = PathfinderDataModule(data_dir=data_dir, source="release", release_dir=release_dir, resolution=128)
    sizes = {}
    for name, module in (("listops", listops), ("retrieval", retrieval), ("pathfinder", pathfinder), ("pathx", pathx)):
        module.prepare_data()
        module.setup("fit")
        sizes[name] = tuple(len(module.split(split)) for split in ("train", "val", "test"))
    assert sizes == {"listops": (6, 2, 2), "retrieval": (8, 4, 4), "pathfinder": (8, 1, 1), "pathx": (8, 1, 1)}


def test_a_later_call_checks_the_archive_against_the_recorded_sha256(tmp_path: Path, archive: Path) -> None:
    data_dir = tmp_path / "data"
    release_dir = lra_release.fetch_release(data_dir)
    assert lra_release.fetch_release(data_dir) == release_dir  # intact: checked, nothing unpacked again
    downloaded = data_dir / "downloads" / "lra_release.gz"
    damaged = bytearray(downloaded.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    downloaded.write_bytes(bytes(damaged))
    with pytest.raises(ChecksumError, match=re.escape(f"{downloaded} (from {archive.as_uri()}) differs")):
        lra_release.fetch_release(data_dir)
    downloaded.unlink()
    assert lra_release.fetch_release(data_dir) == release_dir  # unpacked and the archive deleted: nothing to check


def test_a_damaged_checksum_record_is_refused_naming_it(tmp_path: Path, archive: Path) -> None:
    data_dir = tmp_path / "data"
    lra_release.fetch_release(data_dir)
    record = data_dir / "downloads" / "lra_release.gz.sha256.json"
    record.write_text('{"size": 3}', encoding="utf-8")
    with pytest.raises(ChecksumError, match=re.escape(str(record))):
        lra_release.fetch_release(data_dir)


def test_only_missing_folders_are_unpacked_and_present_ones_are_kept(tmp_path: Path, archive: Path) -> None:
    data_dir = tmp_path / "data"
    release_dir = lra_release.fetch_release(data_dir, folders=("tsv_data",))
    assert [p.name for p in release_dir.iterdir()] == ["tsv_data"]
    kept = release_dir / "tsv_data" / "new_aan_pairs.train.tsv"
    kept.write_text("edited\n", encoding="utf-8")
    lra_release.fetch_release(data_dir)
    assert sorted(p.name for p in release_dir.iterdir()) == sorted(FOLDERS)
    assert kept.read_text(encoding="utf-8") == "edited\n"


def test_an_archive_without_the_release_layout_is_refused(tmp_path: Path, release_files: Path) -> None:
    wrong = write_lra_archive(tmp_path / "lra_release.gz", release_files / "tsv_data")  # files one level too high
    with pytest.raises(ArchiveError, match="no member matched"):
        lra_release.unpack(wrong, tmp_path / "release")
    with pytest.raises(ValueError, match=re.escape("unknown LRA release folders ['pathfinder64']")):
        lra_release.unpack(wrong, tmp_path / "release", folders=("pathfinder64",))
    assert not any((tmp_path / "release").iterdir())


def test_an_archive_missing_a_task_folder_names_it(tmp_path: Path, release_files: Path) -> None:
    only_listops = tmp_path / "only_listops"
    (only_listops / "listops-1000").mkdir(parents=True)
    for file in (release_files / "listops-1000").iterdir():
        (only_listops / "listops-1000" / file.name).write_bytes(file.read_bytes())
    archive = write_lra_archive(tmp_path / "lra_release.gz", only_listops)
    with pytest.raises(ArchiveError, match=re.escape("holds no lra_release/lra_release/tsv_data/")):
        lra_release.unpack(archive, tmp_path / "release", folders=("listops-1000", "tsv_data"))
    assert not (tmp_path / "release" / "listops-1000").exists()  # nothing half-done is left in place


def genuine_served_after(archive: Path, stand_in: bytes) -> bytes:
    """Serve ``stand_in`` where ``archive`` is served; return the genuine archive's bytes, to serve again later."""
    genuine = archive.read_bytes()
    archive.write_bytes(stand_in)
    return genuine


def only_listops_archive(tmp_path: Path, release_files: Path) -> bytes:
    """The bytes of a whole gzipped tar in the release's nesting that holds ``listops-1000`` only."""
    folder = tmp_path / "only_listops"
    (folder / "listops-1000").mkdir(parents=True)
    for file in (release_files / "listops-1000").iterdir():
        (folder / "listops-1000" / file.name).write_bytes(file.read_bytes())
    return write_lra_archive(tmp_path / "only_listops.gz", folder).read_bytes()


@pytest.mark.parametrize(
    ("stand_in", "folders", "problem"),
    [
        (
            b"<html><body>Not Found</body></html>\n\n\n\n\n",
            tuple(FOLDERS),
            "neither gzip nor tar (40 bytes, beginning b'<html><body>Not ')",
        ),
        (None, ("listops-1000",), "holds no lra_release/lra_release/tsv_data/, lra_release/lra_release/pathfinder32/"),
    ],
    ids=["error-page", "listops-only"],
)
def test_a_download_that_is_not_the_release_is_refused_before_its_checksum_is_recorded(
    tmp_path: Path, archive: Path, release_files: Path, stand_in: bytes | None, folders: tuple[str, ...], problem: str
) -> None:
    genuine = genuine_served_after(archive, stand_in or only_listops_archive(tmp_path, release_files))
    data_dir = tmp_path / "data"
    downloaded = data_dir / "downloads" / "lra_release.gz"
    with pytest.raises(ArchiveError) as refused:
        lra_release.fetch_release(data_dir, folders=folders)
    message = str(refused.value)
    assert message.startswith(f"archive {downloaded}: ") and problem in message
    assert "delete it and" in message and "download it again" in message
    assert not (data_dir / "downloads" / "lra_release.gz.sha256.json").exists()  # nothing pinned
    assert not (data_dir / "lra_release" / "listops-1000").exists()
    # the advice: delete it and download it again (the server now has the release)
    downloaded.unlink()
    archive.write_bytes(genuine)
    release_dir = lra_release.fetch_release(data_dir, folders=folders)
    assert sorted(p.name for p in release_dir.iterdir()) == sorted(folders)
    assert download.recorded_checksum(downloaded) == {
        "size": len(genuine),
        "sha256": file_digests(archive, ("sha256",))["sha256"],
    }


def test_an_archive_pinned_by_an_earlier_record_yet_unusable_names_the_record_and_both_files(
    tmp_path: Path, archive: Path
) -> None:
    page = b"<html><body>Not Found</body></html>\n"
    genuine = genuine_served_after(archive, page)
    downloads = tmp_path / "data" / "downloads"
    downloads.mkdir(parents=True)
    downloaded = downloads / "lra_release.gz"
    downloaded.write_bytes(page)
    record = downloads / "lra_release.gz.sha256.json"  # as code that recorded before checking the layout left it
    record.write_text(json.dumps({"size": len(page), "sha256": file_digests(downloaded, ("sha256",))["sha256"]}))
    with pytest.raises(ArchiveError) as refused:
        lra_release.fetch_release(tmp_path / "data")
    message = str(refused.value)
    assert message.startswith(f"archive {downloaded}: truncated or corrupt")
    assert f"{downloaded} matches the size and SHA-256 recorded in {record}" in message
    assert f"delete both {downloaded} (so that it is downloaded again) and {record} (so that the new" in message
    # the advice: delete both, then run again
    downloaded.unlink()
    record.unlink()
    archive.write_bytes(genuine)
    release_dir = lra_release.fetch_release(tmp_path / "data")
    assert sorted(p.name for p in release_dir.iterdir()) == sorted(FOLDERS)
    assert download.recorded_checksum(downloaded)["sha256"] == file_digests(archive, ("sha256",))["sha256"]


def test_the_command_prints_a_refused_archive_s_message_without_a_traceback(tmp_path: Path, monkeypatch, capsys):
    from lra_snn.cli import lra_release as command

    def refused(data_dir):
        raise ArchiveError(data_dir / "downloads" / "lra_release.gz", "not a gzip or tar file; delete it")

    monkeypatch.setattr(command, "fetch_release", refused)
    with pytest.raises(SystemExit) as stop:
        command.main(["--data-dir", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert (
        err == f"lra-release: archive {tmp_path / 'downloads' / 'lra_release.gz'}: not a gzip or tar file; delete it\n"
    )


def test_the_command_fetches_into_the_data_dir_and_names_the_folders(tmp_path: Path, monkeypatch, capsys):
    from lra_snn.cli import lra_release as command
    from lra_snn.config import PROJECT_ROOT

    asked = []

    def fetched(data_dir):
        asked.append(data_dir)
        return data_dir / "lra_release"

    monkeypatch.setattr(command, "fetch_release", fetched)
    command.main(["--data-dir", str(tmp_path)])
    command.main([])
    assert asked == [tmp_path, PROJECT_ROOT / "data"]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"LRA release ready in {tmp_path / 'lra_release'}: {', '.join(lra_release.FOLDERS.values())}"
    with pytest.raises(SystemExit):
        command.main(["--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert "Fetch and unpack the official LRA release (``make data-lra``): ``python -m lra_snn.cli.lra_release" in usage
    assert "DIR]``. options:" in usage  # the docstring's first paragraph, no more
    assert "--data-dir DATA_DIR the runs' paths.data_dir" in usage
