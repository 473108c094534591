"""The cache store (lra_snn/data/store.py): keyed by settings and by the content of the source files,
built once and atomically, damaged caches rebuilt with a warning, leftovers of killed builds removed."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset

from lra_snn.data import store
from lra_snn.data.errors import CacheRebuiltWarning, DataNotFoundError
from lra_snn.data.listops import source as listops_source
from lra_snn.data.listops.module import ListOpsDataModule
from tests.fakes import write_listops_release


def test_settings_hash_is_stable_and_sensitive() -> None:
    settings = {"b": [1, 2], "a": {"y": 1.5, "x": None}}
    reordered = {"a": {"x": None, "y": 1.5}, "b": (1, 2)}
    assert store.settings_hash(settings) == store.settings_hash(reordered)
    assert store.settings_hash(settings) != store.settings_hash({**settings, "b": [1, 3]})
    assert store.cache_dir("/data", "listops", settings) == Path("/data/cache/listops") / store.settings_hash(settings)
    with pytest.raises(TypeError, match="JSON values"):
        store.settings_hash({"path": Path("/x")})


def _builder(calls: list[Path], values: list[int]):
    def build(staging: Path):
        calls.append(staging)
        (staging / "note.txt").write_text("extra file")
        return {"train": Dataset.from_dict({"x": values})}, {"n": len(values)}

    return build


def test_ensure_builds_once_and_leaves_no_staging_folder(tmp_path: Path) -> None:
    settings = {"n": 3, "bounds": (1, 2)}
    target = store.cache_dir(tmp_path, "toy", settings)
    calls: list[Path] = []
    assert store.ensure(target, settings, _builder(calls, [1, 2, 3])) == {"n": 3}
    assert store.ensure(target, settings, _builder(calls, [1, 2, 3])) == {"n": 3}
    assert len(calls) == 1 and calls[0] != target
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    assert not (target / store.WORK_FOLDER).exists() and (target / "note.txt").read_text() == "extra file"
    stored = store.load(target, settings, "make data-toy")
    assert stored.tables["train"].column("x").to_pylist() == [1, 2, 3] and stored.extra == {"n": 3}
    meta = json.loads((target / store.META_FILE).read_text())
    assert meta["settings"] == {"n": 3, "bounds": [1, 2]} and meta["splits"] == {"train": 3}


def test_a_failed_build_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    settings = {"n": 2}
    target = store.cache_dir(tmp_path, "toy", settings)

    def fail(staging: Path):
        (staging / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.ensure(target, settings, fail)
    assert not target.exists() and list(target.parent.iterdir()) == []
    with pytest.raises(DataNotFoundError, match="call prepare_data"):
        store.load(target, settings, "make data-toy")


def test_staging_folders_of_dead_builds_on_this_host_are_removed(tmp_path: Path) -> None:
    settings = {"n": 1}
    target = store.cache_dir(tmp_path, "toy", settings)
    target.parent.mkdir(parents=True)
    host = socket.gethostname()
    dead = target.parent / f".{target.name}.tmp-{host}-999999999-abcd1234"  # no such process
    alive = target.parent / f".{target.name}.tmp-{host}-{os.getpid()}-abcd1234"
    other_host = target.parent / f".{target.name}.tmp-elsewhere-999999999-abcd1234"
    for folder in (dead, alive, other_host):
        (folder / store.WORK_FOLDER).mkdir(parents=True)
    store.ensure(target, settings, _builder([], [1]))
    assert not dead.exists() and alive.exists() and other_host.exists()


def _damage_arrow(target: Path) -> None:
    arrow = next((target / store.SPLITS_FOLDER / "train").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:-40])


def _edit_arrow_same_size(target: Path) -> None:
    arrow = next((target / store.SPLITS_FOLDER / "train").glob("*.arrow"))
    data = bytearray(arrow.read_bytes())
    data[-60] ^= 0xFF  # inside the last record batch: same size, same row count
    arrow.write_bytes(bytes(data))


def _damage_meta_format(target: Path) -> None:
    meta = json.loads((target / store.META_FILE).read_text())
    del meta["format"]
    (target / store.META_FILE).write_text(json.dumps(meta))


def _damage_meta_settings(target: Path) -> None:
    meta = json.loads((target / store.META_FILE).read_text())
    meta["settings"]["n"] = 99
    (target / store.META_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_damage_arrow, r"splits/train/data-00000-of-00001\.arrow is \d+ bytes, written with \d+"),
        (lambda target: (target / store.META_FILE).unlink(), "meta.json is missing"),
        (lambda target: (target / store.META_FILE).write_text("{not json"), "meta.json is unreadable"),
        (lambda target: (target / "note.txt").unlink(), "note.txt is missing"),
        (_damage_meta_settings, "built with other settings: n: stored 99, requested 4"),
        (
            _edit_arrow_same_size,
            r"splits/train/data-00000-of-00001\.arrow changed since it was written \(its SHA-256 differs",
        ),
        (lambda target: (target / "note.txt").write_text("EXTRA FILE"), r"note\.txt changed since it was written"),
        (_damage_meta_format, "store format None, this code reads 2"),
    ],
    ids=[
        "truncated-arrow",
        "no-meta",
        "bad-meta",
        "missing-file",
        "other-settings",
        "edited-arrow",
        "edited-file",
        "no-format",
    ],
)
def test_a_damaged_cache_is_refused_by_load_and_rebuilt_by_ensure_with_a_warning(
    tmp_path: Path, damage, reason: str
) -> None:
    settings = {"n": 4}
    target = store.cache_dir(tmp_path, "toy", settings)
    calls: list[Path] = []
    store.ensure(target, settings, _builder(calls, [5, 6, 7, 8]))
    damage(target)
    with pytest.raises(DataNotFoundError, match="cache damaged: " + reason):
        store.load(target, settings, "make data-toy")
    with pytest.warns(CacheRebuiltWarning, match=re.escape(str(target)) + r" is damaged \(" + reason):
        store.ensure(target, settings, _builder(calls, [5, 6, 7, 8]))
    assert len(calls) == 2
    assert store.load(target, settings, "make data-toy").tables["train"].column("x").to_pylist() == [5, 6, 7, 8]


def test_a_truncated_arrow_file_of_recorded_size_is_caught_by_its_row_count(tmp_path: Path) -> None:
    settings = {"n": 5}
    target = store.cache_dir(tmp_path, "toy", settings)
    store.ensure(target, settings, _builder([], list(range(5))))
    meta = json.loads((target / store.META_FILE).read_text())
    meta["splits"]["train"] = 6
    (target / store.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(DataNotFoundError, match="split 'train' holds 5 rows, written with 6"):
        store.load(target, settings, "make data-toy")


# --------------------------------------------------------------------------- content digests


def test_content_digest_reads_a_file_once_while_it_is_unchanged(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "source.tsv"
    source.write_bytes(b"abc")
    old = time.time() - 60
    os.utime(source, (old, old))
    monkeypatch.setattr(store, "RACY_SECONDS", 0.0)  # utime just set its status-change time: count it as old
    read = []
    real = store._file_sha256
    monkeypatch.setattr(store, "_file_sha256", lambda path: read.append(path) or real(path))
    first = store.content_digest(source, tmp_path / "data")
    assert store.content_digest(source, tmp_path / "data") == first and len(read) == 1
    memo = json.loads((tmp_path / "data" / "cache" / store.DIGESTS_FILE).read_text())
    assert memo[str(source.resolve())]["sha256"] == first
    moved = tmp_path / "moved.tsv"
    shutil.copy2(source, moved)
    assert store.content_digest(moved, tmp_path / "data") == first  # the content, not the path


def test_a_file_changed_moments_ago_is_read_again(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "source.tsv"
    source.write_bytes(b"abc")
    read = []
    real = store._file_sha256
    monkeypatch.setattr(store, "_file_sha256", lambda path: read.append(path) or real(path))
    store.content_digest(source, tmp_path / "data")
    store.content_digest(source, tmp_path / "data")
    assert len(read) == 2  # within its mtime's resolution a same-size edit could follow unseen


def test_folder_digest_covers_names_and_contents(tmp_path: Path) -> None:
    folder = tmp_path / "release"
    (folder / "imgs").mkdir(parents=True)
    (folder / "imgs" / "a.png").write_bytes(b"1")
    (folder / "meta.npy").write_bytes(b"2")
    first = store.content_digest(folder, tmp_path / "data")
    (folder / "imgs" / "a.png").write_bytes(b"3")
    second = store.content_digest(folder, tmp_path / "data")
    (folder / "imgs" / "a.png").rename(folder / "imgs" / "b.png")
    assert len({first, second, store.content_digest(folder, tmp_path / "data")}) == 3


def test_a_same_size_edit_of_a_source_file_gets_a_new_cache(tmp_path: Path) -> None:
    folder = write_listops_release(
        tmp_path / "release", n_train=6, n_val=2, n_test=2, seed=1, max_depth=3, max_args=3, min_length=3, max_length=30
    )
    old = time.time() - 3600
    for path in folder.iterdir():
        os.utime(path, (old, old))  # a release unpacked an hour ago: its digests are memoised
    module = ListOpsDataModule(data_dir=tmp_path / "data", source="release", release_dir=folder, batch_size=4)
    module.prepare_data()
    module.setup()
    before = module.cache_dir()
    train = folder / listops_source.SPLIT_FILES["train"]
    data = train.read_bytes()
    label_at = data.index(b"\t", data.index(b"\r\n") + 2) + 1  # the first example's label digit
    old_label = int(data[label_at : label_at + 1])
    edited = data[:label_at] + str((old_label + 1) % 10).encode() + data[label_at + 1 :]
    assert len(edited) == len(data)
    train.write_bytes(edited)
    os.utime(train, (old, old))  # its modification time set back: the change time still tells
    again = ListOpsDataModule(data_dir=tmp_path / "data", source="release", release_dir=folder, batch_size=4)
    assert again.cache_dir() != before and before.is_dir()
    again.prepare_data()
    again.setup()
    assert again.split("train").labels[0] == (old_label + 1) % 10 != module.split("train").labels[0]


# --------------------------------------------------------------------------- datasets from whole columns


def test_rows_become_typed_columns_across_chunks(monkeypatch) -> None:
    monkeypatch.setattr(store, "ROWS_PER_CHUNK", 3)
    rows = [{"text": bytes([i]) * i, "label": i % 2, "line": i + 1} for i in range(7)]
    dataset = store.from_rows(iter(rows), {"text": "binary", "label": "int8", "line": "int32"}, "rows")
    assert dataset.to_list() == rows
    assert [str(dataset.features[key].dtype) for key in ("text", "label", "line")] == ["binary", "int8", "int32"]
    assert len(store.from_rows([], {"label": "int8"}, "none")) == 0


def test_binary_rows_and_list_arrays_keep_every_row() -> None:
    pixels = np.arange(12, dtype=np.uint8).reshape(4, 3)
    assert store.binary_rows(pixels).to_pylist() == [row.tobytes() for row in pixels]
    values, offsets = np.array([5, 6, 7], dtype=np.int16), np.array([0, 2, 2, 3])
    rows = store.list_array(values, offsets)
    assert rows.to_pylist() == [[5, 6], [], [7]] and str(rows.type) == "list<item: int16>"


# --------------------------------------------------------------------------- through a data module


def test_second_setup_reuses_the_cache_without_generating_or_tokenising(tiny_listops, monkeypatch) -> None:
    first = tiny_listops()
    first.prepare_data()
    first.setup("fit")
    ids_before = [first.split("train").ids.row(i).tolist() for i in range(len(first.split("train")))]

    def refuse(*args, **kwargs):
        raise AssertionError("called although the cache is complete")

    monkeypatch.setattr(listops_source, "generate", refuse)
    monkeypatch.setattr(store, "_build", refuse)
    second = tiny_listops()
    second.prepare_data()
    second.setup("fit")
    assert second.cache_dir() == first.cache_dir()
    assert [second.split("train").ids.row(i).tolist() for i in range(len(second.split("train")))] == ids_before


def test_stored_columns_are_narrow_and_readable_by_datasets(tiny_listops) -> None:
    from datasets import load_from_disk

    module = tiny_listops()
    module.prepare_data()
    loaded = load_from_disk(str(module.cache_dir() / store.SPLITS_FOLDER))
    assert set(loaded) == {"train", "val", "test"}
    assert str(loaded["train"].features["ids"].feature.dtype) == "int16"
    assert loaded["train"].features["label"].dtype == "int8"
    assert np.array_equal(
        np.bincount(loaded["test"]["label"], minlength=10), np.bincount(listops_rows_labels(module), minlength=10)
    )


def listops_rows_labels(module: ListOpsDataModule) -> list[int]:
    rows = listops_source.generated_rows(module.generator_settings)["test"]
    return [row["label"] for row in rows]


def test_a_different_setting_gets_a_different_cache_folder(tiny_listops) -> None:
    base = tiny_listops()
    assert tiny_listops(generator_seed=8).cache_dir() != base.cache_dir()
    assert tiny_listops(max_seq_len=64).cache_dir() != base.cache_dir()
    assert tiny_listops(batch_size=4, num_proc=2).cache_dir() == base.cache_dir()  # no preprocessing setting


def test_setup_without_prepare_data_says_what_to_run(tiny_listops) -> None:
    with pytest.raises(FileNotFoundError, match="call prepare_data"):
        tiny_listops().setup("fit")


def test_ids_outside_the_vocabulary_are_found() -> None:
    import pyarrow as pa

    column = pa.chunked_array([pa.array([[1, 2], [], [3]]), pa.array([[4]])])
    assert store.ids_outside(column, 5) is None
    assert store.ids_outside(column, 4) == 4
    assert store.ids_outside(pa.chunked_array([pa.array([[0, -1]])]), 9) == -1
    assert store.ids_outside(pa.chunked_array([pa.array([[]], type=pa.list_(pa.int16()))]), 1) is None


def test_a_cache_whose_ids_fall_outside_the_vocabulary_is_refused_naming_it(tiny_listops) -> None:
    module = tiny_listops()
    module.prepare_data()
    module.vocab_size = 5  # a cache built with a larger vocabulary than the model's (altered, or another build)
    with pytest.raises(DataNotFoundError) as refused:
        module.setup()
    message = str(refused.value)
    assert f"no data at {module.cache_dir()} (cache damaged: split '" in message
    assert "', column 'ids' holds token id" in message
    assert "outside the vocabulary of 5 ids" in message
    assert f"rm -r {module.cache_dir()} && make data-listops" in message
