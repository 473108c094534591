"""LRA Retrieval (AAN pairs): the TSV reader (quoting off, columns, labels, empty files), pair batches,
release layouts, the download of the release's AAN members, the cache and one tiny training run."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from lra_snn.data import download, store
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.retrieval import module as retrieval
from lra_snn.data.retrieval.source import SPLIT_FILES, iter_rows, locate_release
from lra_snn.data.tokenizers import EOS_ID, PAD_ID, UNK_ID, CharTokenizer
from lra_snn.training.cell import run
from tests.fakes import write_tsv_folder

QUOTED = "We say \"citation graphs\" and 'don't' quote"


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """An LRA-release-shaped folder: ``lra_release/lra_release/tsv_data/new_aan_pairs.*.tsv``."""
    write_tsv_folder(
        tmp_path / "release" / "lra_release" / "lra_release" / "tsv_data", {"train": 12, "val": 5, "test": 5}
    )
    return tmp_path / "release"


def prepared(tmp_path: Path, release_dir: Path, **settings) -> retrieval.RetrievalDataModule:
    datamodule = retrieval.RetrievalDataModule(data_dir=tmp_path / "data", release_dir=release_dir, **settings)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def test_an_empty_subset_size_is_refused_naming_its_key(tmp_path: Path, release: Path) -> None:
    with pytest.raises(ValueError) as refused:
        prepared(tmp_path, release, n_val=0)
    assert str(refused.value) == (
        "data.n_val=0: every split needs at least one example; set data.n_val to a positive count, e.g. "
        "data.n_val=64 or data.n_val=null (the whole split)"
    )
    assert not (tmp_path / "data").exists()
    # the advice: the whole split
    assert len(prepared(tmp_path, release, n_val=None).split("val")) == 10  # 5 pairs per class


# --------------------------------------------------------------------------- reading


def test_rows_keep_quotes_as_text_and_accept_both_label_spellings(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_bytes(f'1.0\ta\tb\t{QUOTED}\tsecond "doc\r\n0\tc\td\tx\ty\n'.encode())
    rows = list(iter_rows(path))
    assert [(row["line"], row["label"]) for row in rows] == [(1, 1), (2, 0)]
    assert rows[0]["first"].decode() == QUOTED and rows[0]["second"] == b'second "doc'


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("1\ta\tb\tonly four", "expected 5 tab-separated columns (label, id1, id2, text1, text2), found 4"),
        ("1\ta\tb\tx\ty\tz", "expected 5 tab-separated columns (label, id1, id2, text1, text2), found 6"),
        ("2\ta\tb\tx\ty", "label '2' is not 0 or 1"),
        ("0.5\ta\tb\tx\ty", "label '0.5' is not 0 or 1"),
        ("yes\ta\tb\tx\ty", "label 'yes' is not a number"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text(f"1\ta\tb\tgood\tline\n{line}\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=re.escape(f"{path}:2: {problem}")):
        list(iter_rows(path))


def test_an_empty_release_file_stops_preparation(tmp_path: Path, release: Path) -> None:
    val_file = release / "lra_release" / "lra_release" / "tsv_data" / SPLIT_FILES["val"]
    val_file.write_bytes(b"")
    with pytest.raises(DataFormatError, match=re.escape(f"{val_file}:1: the file holds no pairs")):
        prepared(tmp_path, release)


def test_malformed_release_file_stops_preparation(tmp_path: Path, release: Path) -> None:
    test_file = release / "lra_release" / "lra_release" / "tsv_data" / SPLIT_FILES["test"]
    with open(test_file, "a", encoding="utf-8") as handle:
        handle.write("1\tonly\tthree\n")
    with pytest.raises(DataFormatError, match=re.escape(f"{test_file}:11: expected 5")):
        prepared(tmp_path, release)


# --------------------------------------------------------------------------- the data module


def test_pair_batches_hold_both_documents_padded_with_lengths(tmp_path: Path, release: Path) -> None:
    datamodule = prepared(tmp_path, release, max_length=20, batch_size=6)
    batch = next(iter(datamodule.val_dataloader()))
    inputs, lengths = batch["inputs"], batch["lengths"]
    assert inputs.shape == (6, 2, int(lengths.max())) and lengths.shape == (6, 2) and batch["labels"].shape == (6,)
    for pair, pair_lengths in zip(inputs, lengths):
        for document, length in zip(pair, pair_lengths):
            assert document[length - 1] == EOS_ID and (document[length:] == PAD_ID).all()
    assert int(lengths.max()) <= 20
    assert datamodule.task_kwargs() == {"n_classes": 2, "pair": True}
    assert datamodule.encoder_kwargs() == {"vocab_size": 259}


def test_documents_are_bytes_plus_three_in_file_order(tmp_path: Path, release: Path) -> None:
    datamodule = prepared(tmp_path, release)
    folder = locate_release(release)
    first_row = next(iter_rows(folder / SPLIT_FILES["train"]))
    split = datamodule.split("train")
    expected = np.frombuffer(first_row["first"], np.uint8).astype(np.int64) + 3
    assert np.array_equal(split.first.row(0), np.append(expected, EOS_ID))
    assert split.labels[0] == first_row["label"] == 0
    assert [datamodule.class_counts(s).tolist() for s in ("train", "val", "test")] == [[12, 12], [5, 5], [5, 5]]


def test_subsets_are_class_balanced_and_seeded(tmp_path: Path, release: Path) -> None:
    datamodule = prepared(tmp_path, release, n_train=6, n_val=4, n_test=2, subset_seed=3)
    assert [datamodule.class_counts(s).tolist() for s in ("train", "val", "test")] == [[3, 3], [2, 2], [1, 1]]


def test_character_level_vocabulary_comes_from_train_documents(tmp_path: Path, release: Path) -> None:
    datamodule = prepared(tmp_path, release, level="char", min_freq=1)
    vocab = json.loads((datamodule.cache_dir() / store.META_FILE).read_text())["extra"]["tokenizer"]["tokens"]
    train_rows = iter_rows(locate_release(release) / SPLIT_FILES["train"])
    train_text = b"".join(row["first"] + row["second"] for row in train_rows)
    assert set(vocab[3:]) == set(train_text.decode())  # every character of the training abstracts, quotes included
    assert '"' in vocab and datamodule.vocab_size == len(vocab)
    test = datamodule.split("test")
    assert max(test.first.row(i).max() for i in range(len(test))) < datamodule.vocab_size


def test_a_document_that_is_not_utf8_names_file_line_and_column_at_character_level(
    tmp_path: Path, release: Path
) -> None:
    train_file = release / "lra_release" / "lra_release" / "tsv_data" / SPLIT_FILES["train"]
    with open(train_file, "ab") as handle:
        handle.write(b"1\ta\tb\tfine\tbroken \xff here\n")
    with pytest.raises(DataFormatError, match=re.escape(f"{train_file}:25: text2 is not valid UTF-8")):
        prepared(tmp_path, release, level="char", min_freq=1)
    assert prepared(tmp_path, release).class_counts("train").tolist() == [12, 13]  # bytes need no decoding


def test_the_first_undecodable_document_of_a_batch_is_named_in_line_order() -> None:
    tokenizer = CharTokenizer(["a"], max_length=8)
    batch = {"label": [1, 0, 1], "first": [b"a", b"a", b"\xff"], "second": [b"a", b"\xfe", b"a"], "line": [3, 7, 9]}
    with pytest.raises(DataFormatError, match=re.escape("src:7: text2 is not valid UTF-8")):
        retrieval.encode_pairs(batch, tokenizer=tokenizer, origin="src")
    table = retrieval.encode_pairs(
        {**batch, "first": [b"a"] * 3, "second": [b"", b"b", b"aa"]}, tokenizer=tokenizer, origin="src"
    )
    assert table.column("second").to_pylist() == [[EOS_ID], [UNK_ID, EOS_ID], [3, 3, EOS_ID]]
    assert table.column_names == ["first", "second", "label"]


@pytest.mark.parametrize("nesting", ["", "tsv_data", "lra_release/tsv_data", "lra_release/lra_release/tsv_data"])
def test_release_layouts_are_found(tmp_path: Path, nesting: str) -> None:
    folder = write_tsv_folder(tmp_path / "root" / nesting, {"train": 2, "val": 1, "test": 1})
    assert locate_release(tmp_path / "root") == folder


def test_missing_tsvs_name_the_folders_and_the_make_target(tmp_path: Path) -> None:
    datamodule = retrieval.RetrievalDataModule(data_dir=tmp_path / "data")
    with pytest.raises(DataNotFoundError, match="make data-retrieval") as raised:
        datamodule.prepare_data()
    assert str(tmp_path / "data" / "lra_release" / "lra_release" / "lra_release" / "tsv_data") in str(raised.value)


def test_interrupted_preparation_is_never_read_as_complete(tmp_path: Path, release: Path, monkeypatch) -> None:
    calls = []
    real_map = store.map_batches

    def interrupted_at_second_split(*args, **kwargs):
        calls.append(args[4])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_map(*args, **kwargs)

    monkeypatch.setattr(store, "map_batches", interrupted_at_second_split)
    datamodule = retrieval.RetrievalDataModule(data_dir=tmp_path / "data", release_dir=release)
    with pytest.raises(KeyboardInterrupt):
        datamodule.prepare_data()
    assert not datamodule.cache_dir().exists() and list(datamodule.cache_dir().parent.iterdir()) == []
    monkeypatch.undo()
    assert prepared(tmp_path, release).class_counts("train").tolist() == [12, 12]


# --------------------------------------------------------------------------- download


def write_fake_release(path: Path, tsv_folder: Path) -> Path:
    """A gzipped tar named like the LRA release: the AAN TSVs plus other tasks' files that must be skipped (one
    in each other task folder, which every release holds)."""
    decoys = {
        "listops-1000/basic_train.tsv": b"Source\tTarget\n( [MAX 1 ] )\t1\n",
        "pathfinder32/curv_baseline/metadata/0.npy": b"a pathfinder metadata file\n",
        "pathfinder128/curv_baseline/metadata/0.npy": b"a path-x metadata file\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, decoy in decoys.items():
            info = tarfile.TarInfo(f"lra_release/lra_release/{name}")
            info.size = len(decoy)
            tar.addfile(info, io.BytesIO(decoy))
        for name in SPLIT_FILES.values():
            tar.add(tsv_folder / name, arcname=f"lra_release/lra_release/tsv_data/{name}")
    return path


def test_download_fetches_the_release_and_extracts_only_the_aan_files(tmp_path: Path, monkeypatch) -> None:
    source_tsvs = write_tsv_folder(tmp_path / "source", {"train": 4, "val": 2, "test": 2})
    (tmp_path / "server").mkdir()
    archive = write_fake_release(tmp_path / "server" / "lra_release.gz", source_tsvs)
    monkeypatch.setitem(
        download.SOURCES, "lra_release", download.Source(url=archive.as_uri(), filename="lra_release.gz")
    )
    datamodule = retrieval.RetrievalDataModule(
        data_dir=tmp_path / "data", release_dir=tmp_path / "data" / "lra_release"
    )
    folder = datamodule.download()
    assert folder == tmp_path / "data" / "lra_release" / "tsv_data"
    assert sorted(p.name for p in folder.iterdir()) == sorted(SPLIT_FILES.values())
    assert [p.name for p in (tmp_path / "data" / "lra_release").iterdir()] == ["tsv_data"]
    assert not list((tmp_path / "data").rglob("basic_train.tsv"))
    assert (tmp_path / "data" / "downloads" / "lra_release.gz").is_file()
    assert not (tmp_path / "data" / "downloads" / "lra_release_aan").exists()
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.class_counts("train").tolist() == [4, 4]


def test_download_does_nothing_when_the_tsvs_are_present(release: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        retrieval, "fetch_release", lambda *args, **kwargs: pytest.fail("fetched although the TSVs exist")
    )
    datamodule = retrieval.RetrievalDataModule(data_dir=tmp_path / "data", release_dir=release)
    assert datamodule.download() == locate_release(release)


@pytest.mark.parametrize("model", ["s4d", "spikingssm"])
def test_tiny_retrieval_trains_end_to_end(model, compose_train, tmp_path: Path) -> None:
    folder = write_tsv_folder(tmp_path / "aan", {"train": 32, "val": 16, "test": 16})
    cfg = compose_train("data=retrieval", f"model={model}", "profile=tiny", f"data.release_dir={folder}")
    assert cfg.data.max_length == 128 and cfg.data.n_train == 64
    record = run(cfg)
    assert record["status"] == "completed", record.get("message")
    assert record["metrics"]["test/majority_rate"] == 0.5
