"""Caches keyed by their settings: built once, rebuilt when half-written, refused when their settings differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lra_snn.data import cache, listops
from lra_snn.data.errors import CacheMismatchError


def test_settings_hash_is_stable_and_sensitive() -> None:
    settings = {"b": [1, 2], "a": {"y": 1.5, "x": None}}
    reordered = {"a": {"x": None, "y": 1.5}, "b": (1, 2)}
    assert cache.settings_hash(settings) == cache.settings_hash(reordered)
    assert cache.settings_hash(settings) != cache.settings_hash({**settings, "b": [1, 3]})
    assert cache.cache_dir("/data", "listops", settings) == Path("/data/cache/listops") / cache.settings_hash(settings)
    with pytest.raises(TypeError, match="JSON values"):
        cache.settings_hash({"path": Path("/x")})


def _writer(calls: list[Path], text: str = "payload"):
    def write(folder: Path) -> None:
        calls.append(folder)
        (folder / "part.txt").write_text(text)

    return write


def test_ensure_built_builds_once_and_leaves_no_staging_folder(tmp_path: Path) -> None:
    settings = {"n": 3, "bounds": (1, 2)}
    target = cache.cache_dir(tmp_path, "toy", settings)
    calls: list[Path] = []
    assert cache.ensure_built(target, settings, _writer(calls)) == target
    assert cache.ensure_built(target, settings, _writer(calls)) == target
    assert len(calls) == 1 and calls[0] != target
    assert (target / "part.txt").read_text() == "payload"
    assert cache.read_settings(target) == {"n": 3, "bounds": [1, 2]}
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_partially_written_folder_is_rebuilt_not_read(tmp_path: Path) -> None:
    settings = {"n": 1}
    target = cache.cache_dir(tmp_path, "toy", settings)
    target.mkdir(parents=True)
    (target / "part.txt").write_text("half")  # an interrupted build: no meta.json
    assert not cache.is_complete(target)
    calls: list[Path] = []
    cache.ensure_built(target, settings, _writer(calls))
    assert len(calls) == 1 and (target / "part.txt").read_text() == "payload"
    assert cache.is_complete(target)


def test_failed_build_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    settings = {"n": 2}
    target = cache.cache_dir(tmp_path, "toy", settings)

    def fail(folder: Path) -> None:
        (folder / "part.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.ensure_built(target, settings, fail)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_stored_settings_that_disagree_give_a_clear_error(tmp_path: Path) -> None:
    settings = {"n": 4, "seed": 0}
    target = cache.cache_dir(tmp_path, "toy", settings)
    cache.ensure_built(target, {"n": 4, "seed": 1}, _writer([]))
    with pytest.raises(CacheMismatchError, match=r"seed: stored 1, requested 0") as error:
        cache.ensure_built(target, settings, _writer([]))
    assert str(target) in str(error.value) and "delete that folder" in str(error.value)


def test_second_setup_reuses_the_cache_without_regenerating_or_retokenising(tiny_listops, monkeypatch) -> None:
    first = tiny_listops()
    first.prepare_data()
    first.setup("fit")
    tokens_before = first.splits["train"].tokens.tolist()

    def refuse(*args, **kwargs):
        raise AssertionError("called although the cache is complete")

    monkeypatch.setattr(listops.ListOpsTokenizer, "encode_file", refuse)
    monkeypatch.setattr(listops, "write_release", refuse)
    second = tiny_listops()
    second.prepare_data()
    second.setup("fit")
    assert second.cache_dir() == first.cache_dir()
    assert second.splits["train"].tokens.tolist() == tokens_before


def test_a_different_setting_gets_a_different_cache_folder(tiny_listops) -> None:
    base = tiny_listops()
    assert tiny_listops(generator_seed=8).cache_dir() != base.cache_dir()
    assert tiny_listops(max_seq_len=64).cache_dir() != base.cache_dir()
    assert tiny_listops(batch_size=4).cache_dir() == base.cache_dir()  # batching is no preprocessing setting


def test_datamodule_refuses_a_cache_whose_settings_disagree(tiny_listops) -> None:
    module = tiny_listops()
    module.prepare_data()
    meta = module.cache_dir() / cache.META_FILE
    stored = json.loads(meta.read_text())
    stored["settings"]["max_seq_len"] = 4096
    meta.write_text(json.dumps(stored))
    with pytest.raises(CacheMismatchError, match="max_seq_len: stored 4096, requested 2048"):
        module.setup("fit")


def test_setup_without_prepare_data_says_what_to_run(tiny_listops) -> None:
    with pytest.raises(FileNotFoundError, match="call prepare_data"):
        tiny_listops().setup("fit")
