"""The cache store (lra_snn/data/store.py): keyed by settings and by the content of the source files,
built once and atomically, damaged caches rebuilt with a warning, leftovers of killed builds removed."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset

from lra_snn.data import base, store
from lra_snn.data.errors import BlockedPathError, CacheRebuiltWarning, DamagedCacheError, DataNotFoundError
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
    with pytest.raises(DamagedCacheError) as refused:
        module.setup()
    message = str(refused.value)
    assert message.startswith(f"cache {module.cache_dir()} is damaged (split '")
    assert "', column 'ids' holds token id" in message
    assert "outside the vocabulary of 5 ids" in message
    assert isinstance(refused.value, DataNotFoundError)


def rewrite_column(cache: Path, split: str, name: str, edit) -> None:
    """Replace column ``name`` of the cached ``split`` by ``edit(its values as lists)`` and record the new file in
    meta.json, as a careful hand edit would: the cache stays self-consistent and opens."""
    import pyarrow as pa

    arrow = next((cache / store.SPLITS_FOLDER / split).glob("*.arrow"))
    table = pa.ipc.open_stream(arrow.read_bytes()).read_all()
    index = table.schema.get_field_index(name)
    field = table.schema.field(index)
    table = table.set_column(index, field, pa.array(edit(table.column(name).to_pylist()), type=field.type))
    with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    meta = json.loads((cache / store.META_FILE).read_text())
    data = arrow.read_bytes()
    meta["files"][arrow.relative_to(cache).as_posix()] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (cache / store.META_FILE).write_text(json.dumps(meta))


def first_set_to(value):
    """An edit of ``rewrite_column``: the first value (or the first id of the first row) becomes ``value``."""

    def edit(values: list) -> list:
        if isinstance(values[0], list):
            return [[value, *values[0][1:]], *values[1:]]
        return [value, *values[1:]]

    return edit


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("label", 12, "split 'train' holds label 12, outside the 10 classes 0-9 of listops"),
        ("ids", 18, "split 'train', column 'ids' holds token id 18, outside the vocabulary of 18 ids"),
    ],
    ids=["label", "token-id"],
)
def test_a_cache_holding_values_the_model_cannot_take_is_refused_at_setup_and_rebuilt_as_advised(
    tiny_listops, column: str, value: int, problem: str
) -> None:
    module = tiny_listops()
    module.prepare_data()
    cache = module.cache_dir()
    rewrite_column(cache, "train", column, first_set_to(value))
    module.prepare_data()  # the edited cache is self-consistent: opened as it is, not rebuilt
    with pytest.raises(DamagedCacheError) as refused:
        module.setup("fit")
    assert str(refused.value) == (
        f"cache {cache} is damaged ({problem}); remove it with `rm -r {cache}` and run the same command again, "
        "which builds this cache anew"
    )
    # the advice: remove the folder, run the same command again (it prepares the data, then sets it up)
    shutil.rmtree(cache)
    again = tiny_listops()
    again.prepare_data()
    again.setup("fit")
    assert again.cache_dir() == cache
    expected = listops_source.generated_rows(again.generator_settings)["train"]
    assert again.split("train").labels.tolist() == [row["label"] for row in expected]
    assert again.split("train").ids.row(0).max() < 18


def test_the_advice_for_a_damaged_cache_holds_for_the_training_command(compose_train) -> None:
    from hydra.utils import instantiate

    from lra_snn.training.cell import RunFailed, run

    cfg = compose_train(
        "data=listops", "model=s4d", "profile=tiny", "data.n_train=32", "data.n_val=16", "data.n_test=16"
    )
    module = instantiate(cfg.data)
    module.prepare_data()
    cache = module.cache_dir()
    rewrite_column(cache, "train", "label", first_set_to(12))
    with pytest.raises(RunFailed) as failed:
        run(cfg)
    assert f"cache {cache} is damaged (split 'train' holds label 12" in str(failed.value)
    assert f"remove it with `rm -r {cache}` and run the same command again" in str(failed.value)
    # the advice: remove the folder, run the same command again
    shutil.rmtree(cache)
    assert run(cfg)["status"] == "completed"
    assert (cache / store.META_FILE).is_file()


def test_a_file_where_the_cache_folder_belongs_is_refused_before_any_build(tiny_listops, monkeypatch) -> None:
    module = tiny_listops()
    cache = module.cache_dir()
    cache.parent.mkdir(parents=True)
    cache.write_text("not a cache")
    monkeypatch.setattr(listops_source, "generate", lambda *args, **kwargs: pytest.fail("built although refused"))
    for step in (module.prepare_data, module.setup):
        with pytest.raises(BlockedPathError) as refused:
            step()
        assert str(refused.value) == (
            f"{cache} is a file, where a cache folder belongs; nothing was written. Remove it with `rm {cache}` "
            "(after moving anything of yours out of it) and run again"
        )
    assert [p.name for p in cache.parent.iterdir()] == [cache.name] and cache.read_text() == "not a cache"
    # the advice: remove it and run again
    monkeypatch.undo()
    cache.unlink()
    module.prepare_data()
    module.setup()
    assert len(module.split("test")) == 30 and (cache / store.META_FILE).is_file()


def test_a_folder_where_the_digest_memo_belongs_is_refused_leaving_no_stray_file(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "source.tsv"
    source.write_bytes(b"abc")
    old = time.time() - 60
    os.utime(source, (old, old))
    monkeypatch.setattr(store, "RACY_SECONDS", 0.0)
    memo = tmp_path / "data" / "cache" / store.DIGESTS_FILE
    memo.mkdir(parents=True)
    with pytest.raises(BlockedPathError) as refused:
        store.content_digest(source, tmp_path / "data")
    assert str(refused.value) == (
        f"{memo} is a folder, where the memo of content digests (a JSON file) belongs; nothing was written. Remove "
        f"it with `rm -r {memo}` (after moving anything of yours out of it) and run again"
    )
    with pytest.raises(IsADirectoryError):
        store._write_json_atomically(memo, {})  # a failed write leaves no partial file either
    assert [p.name for p in memo.parent.iterdir()] == [store.DIGESTS_FILE]
    # the advice: remove it and run again
    memo.rmdir()
    digest = store.content_digest(source, tmp_path / "data")
    assert digest == hashlib.sha256(b"abc").hexdigest()
    assert json.loads(memo.read_text())[str(source.resolve())]["sha256"] == digest


def test_a_build_that_gives_an_empty_split_keeps_no_cache(tmp_path: Path) -> None:
    settings = {"n": 0}
    target = store.cache_dir(tmp_path, "toy", settings)

    def build(staging: Path):
        return {"train": Dataset.from_dict({"x": [1]}), "test": Dataset.from_dict({"x": []})}, {}

    with pytest.raises(ValueError) as refused:
        store.ensure(target, settings, build)
    assert str(refused.value) == (
        f"the build of cache {target} gave no examples for split 'test'; nothing was kept. Ask for at least one "
        "example per split (data.n_<split>) and check the split's source files"
    )
    assert list(target.parent.iterdir()) == []
    # the advice: a build with an example in every split is kept
    assert store.ensure(target, {"n": 1}, _builder([], [1])) == {"n": 1}


def single_class_release(folder: Path, val_labels: list[int]) -> Path:
    """A ListOps release whose validation file holds one example per label of ``val_labels``."""
    release = write_listops_release(
        folder, n_train=6, n_val=2, n_test=12, seed=1, max_depth=3, max_args=3, min_length=3, max_length=30
    )
    lines = [f"( ( ( [MAX {label} ) 0 ) ] )\t{label}" for label in val_labels]
    (release / listops_source.SPLIT_FILES["val"]).write_text("Source\tTarget\n" + "\n".join(lines) + "\n")
    return release


@pytest.mark.parametrize(
    ("val_labels", "warned"),
    [([7] * 12, True), ([7] * base.FEW_EXAMPLES, False), ([7] * 11 + [3], False)],
    ids=["single-class", "few-examples", "two-classes"],
)
def test_an_evaluation_split_of_a_single_class_is_warned_about(
    tmp_path: Path, caplog, val_labels: list[int], warned: bool
) -> None:
    release = single_class_release(tmp_path / "release", val_labels)
    module = ListOpsDataModule(data_dir=tmp_path / "data", source="release", release_dir=release, batch_size=4)
    module.prepare_data()
    with caplog.at_level(logging.WARNING, logger="lra_snn.data.base"):
        module.setup()
    expected = (
        f"split 'val' of cache {module.cache_dir()} holds a single class (7): its {len(val_labels)} examples all "
        "carry that label, so accuracy on it says nothing about the model; check the source of that split"
    )
    assert [record.getMessage() for record in caplog.records] == ([expected] if warned else [])
