"""LRA Text (IMDB): the real archive's counts, byte and character tokenisation, validation choices,
subsets, the cache, the Hub path on a local Hub-layout folder, bad input, then one tiny training run."""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Features, Value

from lra_snn.data import download, store
from lra_snn.data.download import ArchiveError, DownloadError, file_digests
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.text import module as text
from lra_snn.data.text.source import release_dataset
from lra_snn.data.tokenizers import EOS_ID, PAD_ID, UNK_ID, ByteTokenizer, CharTokenizer
from lra_snn.training.cell import run
from tests.fakes import fake_reviews, write_hub_repository, write_imdb_archive

SHARED_ARCHIVE = Path("imdb") / "aclImdb_v1_posneg.tar.gz"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", fake_reviews(20, seed=0))


def module(tmp_path: Path, archive: Path, **settings) -> text.TextDataModule:
    return text.TextDataModule(data_dir=tmp_path / "data", archives=[tmp_path / "absent.tar.gz", archive], **settings)


def prepared(tmp_path: Path, archive: Path, **settings) -> text.TextDataModule:
    datamodule = module(tmp_path, archive, **settings)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def vocabulary(datamodule: text.TextDataModule) -> list[str]:
    """The tokens the cache recorded for its tokeniser."""
    meta = json.loads((datamodule.cache_dir() / store.META_FILE).read_text(encoding="utf-8"))
    return meta["extra"]["tokenizer"]["tokens"]


# --------------------------------------------------------------------------- the real archive


def test_real_archive_gives_25k_train_and_25k_test_balanced(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    source = shared_data / SHARED_ARCHIVE
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    started = time.perf_counter()
    datamodule = prepared(tmp_path, source, val_split="test")
    built_s = time.perf_counter() - started
    for split in ("train", "val", "test"):
        assert datamodule.class_counts(split).tolist() == [12_500, 12_500], split
    assert datamodule.split("val") is datamodule.split("test")  # test doubles as validation
    lengths = datamodule.split("train").ids.lengths()
    assert lengths.max() == 4096 and lengths.min() > 1
    # the first negative training review, byte for byte (members are ordered by label, then id)
    with tarfile.open(source) as tar:
        raw = tar.extractfile("aclImdb/train/neg/0_3.txt").read()
    expected = np.frombuffer(raw[:4095], np.uint8).astype(np.int64) + 3
    assert np.array_equal(datamodule.split("train").ids.row(0), np.append(expected, EOS_ID))

    monkeypatch.setattr(store, "_build", lambda *args: pytest.fail("a complete cache was rebuilt"))
    started = time.perf_counter()
    again = prepared(tmp_path, source, val_split="test")
    cached_s = time.perf_counter() - started
    assert again.class_counts("train").tolist() == [12_500, 12_500]
    print(f"IMDB byte level: tokenised in {built_s:.1f} s, cached prepare+setup {cached_s * 1000:.1f} ms")


@pytest.mark.slow
def test_real_archive_character_vocabulary_is_about_135(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / SHARED_ARCHIVE
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    datamodule = prepared(tmp_path, source, level="char")
    assert 120 <= datamodule.vocab_size <= 150
    assert vocabulary(datamodule)[:5] == ["<pad>", "<unk>", "<eos>", " ", "e"]  # space, then the most frequent letter


# --------------------------------------------------------------------------- tokenisers


def test_byte_tokens_are_utf8_bytes_plus_three_truncated_with_eos() -> None:
    tokenizer = ByteTokenizer(max_length=6)
    assert tokenizer.vocab_size == 259
    assert tokenizer.encode(b"Ab").tolist() == [65 + 3, 98 + 3, EOS_ID]
    assert tokenizer.encode("café!".encode()).tolist() == [99 + 3, 97 + 3, 102 + 3, 0xC3 + 3, 0xA9 + 3, EOS_ID]
    assert len(tokenizer.encode(b"x" * 100)) == 6 and tokenizer.encode(b"\xff").dtype == np.int16


def test_character_vocabulary_by_frequency_with_min_freq_and_unknowns() -> None:
    documents = ["aaab", "abc", "ab"]  # a: 5, b: 3, c: 1
    tokenizer = CharTokenizer.from_documents([d.encode() for d in documents], min_freq=2, max_length=5)
    assert tokenizer.vocab == ("<pad>", "<unk>", "<eos>", "a", "b")
    assert tokenizer.encode("bcaé".encode()).tolist() == [4, UNK_ID, 3, UNK_ID, EOS_ID]
    assert tokenizer.encode("ééééééé".encode()).tolist() == [UNK_ID] * 4 + [EOS_ID]  # truncation counts characters


def test_character_vocabulary_counts_truncated_documents_only() -> None:
    tokenizer = CharTokenizer.from_documents([b"ab" + b"z" * 10], min_freq=1, max_length=3)
    assert tokenizer.vocab == ("<pad>", "<unk>", "<eos>", "a", "b")


def test_character_counts_over_many_batches_equal_one_count() -> None:
    documents = [("x" * (i % 7) + "y" * (i % 3) + chr(0x4E00 + i % 5)).encode() for i in range(2500)]
    many = CharTokenizer.from_documents(documents, min_freq=1, max_length=50)
    text_all = "".join(d.decode() for d in documents)
    assert sorted(many.vocab[3:]) == sorted(set(text_all))
    counts = {c: text_all.count(c) for c in set(text_all)}
    assert list(many.vocab[3:]) == sorted(counts, key=lambda c: (-counts[c], ord(c)))


def test_a_batch_encodes_as_its_documents_one_by_one() -> None:
    documents = [b"", "caf\u00e9 au lait".encode(), b"x" * 20, "\u00e9\u00e9".encode()]
    for tokenizer in (
        ByteTokenizer(max_length=6),
        CharTokenizer.from_documents(documents, min_freq=2, max_length=6),
    ):
        ids, offsets = tokenizer.encode_batch(documents)
        assert offsets.tolist() == np.cumsum([0] + [len(tokenizer.encode(d)) for d in documents]).tolist()
        for i, document in enumerate(documents):
            assert ids[offsets[i] : offsets[i + 1]].tolist() == tokenizer.encode(document).tolist()
        assert ids.dtype == np.int16 and tokenizer.encode_batch([])[0].size == 0


def test_a_review_that_is_not_utf8_within_a_batch_is_named() -> None:
    tokenizer = CharTokenizer(["a"], max_length=8)
    batch = {"text": [b"a", b"a \xff", b"\xfe"], "label": [0, 1, 0], "name": ["n0", "n1", "n2"]}
    with pytest.raises(DataFormatError, match=re.escape("src/n1:1: review is not valid UTF-8")):
        text.encode_reviews(batch, tokenizer=tokenizer, origin="src")
    table = text.encode_reviews({**batch, "text": [b"a", b"ab", b""]}, tokenizer=tokenizer, origin="src")
    assert table.column("ids").to_pylist() == [[3, EOS_ID], [3, UNK_ID, EOS_ID], [EOS_ID]]


# --------------------------------------------------------------------------- the data module


def test_batches_are_padded_token_ids_with_lengths(tmp_path: Path, archive: Path) -> None:
    datamodule = prepared(tmp_path, archive, max_length=16, batch_size=8)
    batch = next(iter(datamodule.test_dataloader()))
    assert batch["inputs"].shape == (8, batch["lengths"].max()) and batch["inputs"].max() < datamodule.vocab_size
    for row, length in zip(batch["inputs"], batch["lengths"]):
        assert row[length - 1] == EOS_ID and (row[length:] == PAD_ID).all()
    assert datamodule.encoder_kwargs() == {"vocab_size": 259}
    assert datamodule.task_kwargs() == {"n_classes": 2, "pair": False}


def test_labels_follow_the_folders_and_extra_files_are_ignored(tmp_path: Path) -> None:
    reviews = {
        ("train", "pos"): [b"good"],
        ("train", "neg"): [b"bad", b"worse"],
        ("test", "pos"): [b"fine"],
        ("test", "neg"): [b"poor"],
    }
    read = release_dataset(write_imdb_archive(tmp_path / "a.tar.gz", reviews))
    assert read["train"]["text"] == [b"bad", b"worse", b"good"] and read["train"]["label"] == [0, 0, 1]
    assert read["train"][0]["name"] == "aclImdb/train/neg/0_2.txt"


def test_an_unpacked_folder_reads_like_the_archive(tmp_path: Path, archive: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    from_archive = release_dataset(archive)
    from_folder = release_dataset(tmp_path / "unpacked")
    for split in ("train", "test"):
        assert from_folder[split]["text"] == from_archive[split]["text"]
        assert from_folder[split]["label"] == from_archive[split]["label"]


def test_validation_held_out_of_train_is_disjoint_and_seeded(tmp_path: Path, archive: Path) -> None:
    datamodule = prepared(tmp_path, archive, val_split="train", val_fraction=0.25, split_seed=3)
    rows = {
        split: {datamodule.split(split).ids.row(i).tobytes() for i in range(len(datamodule.split(split)))}
        for split in ("train", "val")
    }
    assert (len(datamodule.split("train")), len(datamodule.split("val"))) == (30, 10)
    assert not rows["train"] & rows["val"] and len(datamodule.split("test")) == 40
    other_seed = prepared(tmp_path, archive, val_split="train", val_fraction=0.25, split_seed=4)
    assert other_seed.cache_dir() != datamodule.cache_dir()


def test_validation_loader_serves_the_held_out_reviews_and_test_only_when_asked(tmp_path: Path, archive: Path) -> None:
    def loaded(loader) -> list[bytes]:
        return [
            row[:length].numpy().tobytes() for batch in loader for row, length in zip(batch["inputs"], batch["lengths"])
        ]

    held_out = prepared(tmp_path, archive, val_fraction=0.25, batch_size=7)  # the default: val_split="train"
    rows = {
        split: {held_out.split(split).ids.row(i).astype(np.int64).tobytes() for i in range(len(held_out.split(split)))}
        for split in ("train", "val", "test")
    }
    served = loaded(held_out.val_dataloader())
    assert len(served) == 10 and set(served) == rows["val"]
    assert not set(served) & (rows["train"] | rows["test"])
    on_test = prepared(tmp_path, archive, val_split="test", batch_size=7)
    assert loaded(on_test.val_dataloader()) == loaded(on_test.test_dataloader())


def test_subsets_are_class_balanced(tmp_path: Path, archive: Path) -> None:
    datamodule = prepared(tmp_path, archive, val_split="train", n_train=10, n_val=4, n_test=6)
    assert [datamodule.class_counts(s).tolist() for s in ("train", "val", "test")] == [[5, 5], [2, 2], [3, 3]]
    with pytest.raises(ValueError, match="a subset of 60 examples of the test split needs 1 <= n <= 40"):
        module(tmp_path, archive, n_test=60).prepare_data()
    reviews = fake_reviews(20, seed=0)
    reviews["test", "neg"] = reviews["test", "neg"][:5]
    imbalanced = write_imdb_archive(tmp_path / "imbalanced.tar.gz", reviews)
    with pytest.raises(ValueError, match="needs 6 of class 0, but the test split holds only 5"):
        module(tmp_path, imbalanced, n_test=12).prepare_data()


def test_character_level_records_its_vocabulary_in_the_cache(tmp_path: Path, archive: Path) -> None:
    datamodule = prepared(tmp_path, archive, level="char", min_freq=3)
    tokens = vocabulary(datamodule)
    assert tokens[:3] == ["<pad>", "<unk>", "<eos>"] and datamodule.vocab_size == len(tokens) < 259
    train = datamodule.split("train")
    assert max(train.ids.row(i).max() for i in range(len(train))) < datamodule.vocab_size
    again = module(tmp_path, archive, level="char", min_freq=3)
    again.prepare_data()
    assert again.vocab_size == datamodule.vocab_size  # known from the cache, before setup


def test_missing_archives_name_every_candidate_and_the_make_target(tmp_path: Path) -> None:
    datamodule = text.TextDataModule(data_dir=tmp_path, archives=[tmp_path / "a.tar.gz", tmp_path / "b"])
    with pytest.raises(DataNotFoundError, match="make data-text") as raised:
        datamodule.prepare_data()
    assert str(tmp_path / "a.tar.gz") in str(raised.value) and str(tmp_path / "b") in str(raised.value)
    default = text.TextDataModule(data_dir=tmp_path)
    assert default.archives == [tmp_path / "downloads" / "aclImdb_v1.tar.gz"]


def test_download_fetches_the_tarball_where_prepare_data_looks(tmp_path: Path, archive: Path, monkeypatch) -> None:
    source = download.Source(
        url=archive.as_uri(),
        filename="aclImdb_v1.tar.gz",
        size=archive.stat().st_size,
        sha256=file_digests(archive, ("sha256",))["sha256"],
    )
    monkeypatch.setitem(download.SOURCES, "imdb", source)
    datamodule = text.TextDataModule(data_dir=tmp_path / "data", val_split="test")
    assert datamodule.download() == tmp_path / "data" / "downloads" / "aclImdb_v1.tar.gz"
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.class_counts("train").tolist() == [20, 20]


def test_download_does_nothing_when_a_source_exists(tmp_path: Path, archive: Path, monkeypatch) -> None:
    monkeypatch.setattr(text, "fetch_source", lambda *args: pytest.fail("fetched although a source exists"))
    assert module(tmp_path, archive).download() == archive


def test_an_archive_without_reviews_is_reported(tmp_path: Path) -> None:
    reviews = {("train", "pos"): [b"good"], ("train", "neg"): [b"bad"]}
    with pytest.raises(DataNotFoundError, match=re.escape("no review aclImdb/test/{pos,neg}")):
        release_dataset(write_imdb_archive(tmp_path / "a.tar.gz", reviews))


def test_truncated_archive_names_it_and_keeps_the_earlier_cache(tmp_path: Path, archive: Path) -> None:
    good = prepared(tmp_path, archive)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ArchiveError, match=re.escape(str(truncated))):
        module(tmp_path, truncated).prepare_data()
    assert not module(tmp_path, truncated).cache_dir().exists()
    again = module(tmp_path, archive)
    again.setup()  # the cache built before is intact
    assert again.class_counts("train").tolist() == good.class_counts("train").tolist()


def test_non_utf8_review_names_file_and_line_at_character_level(tmp_path: Path) -> None:
    reviews = fake_reviews(3, seed=1)
    reviews["train", "pos"][1] = b"fine\nthen \xff broken"
    source = write_imdb_archive(tmp_path / "a.tar.gz", reviews)
    expected = re.escape("a.tar.gz/aclImdb/train/pos/1_8.txt:2: review is not valid UTF-8")
    with pytest.raises(DataFormatError, match=expected):
        module(tmp_path, source, level="char", min_freq=1).prepare_data()
    assert prepared(tmp_path, source, val_split="test").class_counts("train").tolist() == [3, 3]  # bytes: no decoding


def test_interrupted_preparation_is_never_read_as_complete(tmp_path: Path, archive: Path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    datamodule = module(tmp_path, archive)
    monkeypatch.setattr(text, "tokenizer_record", interrupted)  # after every split is tokenised
    with pytest.raises(KeyboardInterrupt):
        datamodule.prepare_data()
    with pytest.raises(DataNotFoundError, match="call prepare_data"):
        datamodule.setup()
    monkeypatch.undo()
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.class_counts("test").tolist() == [20, 20]


def test_bad_settings_are_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="source must be one of"):
        text.TextDataModule(data_dir="d", source="web")
    with pytest.raises(ValueError, match="level must be one of"):
        text.TextDataModule(data_dir="d", level="word")
    with pytest.raises(ValueError, match="val_split must be one of"):
        text.TextDataModule(data_dir="d", val_split="eval")
    with pytest.raises(ValueError, match="n_val applies to val_split='train' only"):
        text.TextDataModule(data_dir="d", val_split="test", n_val=10)
    with pytest.raises(ValueError, match="max_length counts EOS"):
        text.TextDataModule(data_dir="d", max_length=1)


# --------------------------------------------------------------------------- the Hub


IMDB_FEATURES = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})


def imdb_hub_repository(folder: Path, reviews: dict[tuple[str, str], list[bytes]]) -> Path:
    """A folder laid out like ``stanfordnlp/imdb`` holding ``reviews`` in the release's order (label, then id)."""
    splits = {}
    for split in ("train", "test"):
        texts = [data.decode() for sentiment in ("neg", "pos") for data in reviews[split, sentiment]]
        labels = [label for label, sentiment in enumerate(("neg", "pos")) for _ in reviews[split, sentiment]]
        splits[split] = {"text": texts, "label": labels}
    splits["unsupervised"] = {"text": ["an unlabelled review"], "label": [-1]}
    return write_hub_repository(folder, "plain_text", splits, IMDB_FEATURES)


def test_hub_source_reads_a_hub_layout_folder_like_the_release(tmp_path: Path, archive: Path) -> None:
    reviews = fake_reviews(20, seed=0)
    repository = imdb_hub_repository(tmp_path / "stanfordnlp_imdb", reviews)
    hub = text.TextDataModule(
        data_dir=tmp_path / "data",
        source="hub",
        hub_path=str(repository),
        max_length=64,
        val_split="train",
        val_fraction=0.25,
        n_train=20,
        n_val=4,
        n_test=10,
    )
    with pytest.raises(DataNotFoundError, match=re.escape('make data-text ARGS="data.source=hub"')):
        hub.prepare_data()  # nothing downloaded yet
    snapshot = hub.download()
    hub_folder = str(repository).strip("/").replace("/", "__")
    assert snapshot == tmp_path / "data" / "downloads" / "hub" / hub_folder / "plain_text"
    hub.prepare_data()
    hub.setup()
    release = prepared(
        tmp_path, archive, max_length=64, val_split="train", val_fraction=0.25, n_train=20, n_val=4, n_test=10
    )
    assert hub.cache_dir() != release.cache_dir()
    for split in ("train", "val", "test"):
        mine, theirs = hub.split(split), release.split(split)
        assert mine.labels.tolist() == theirs.labels.tolist()
        assert all(np.array_equal(mine.ids.row(i), theirs.ids.row(i)) for i in range(len(mine)))
    assert hub.download() == snapshot  # present: nothing is fetched again


def test_a_hub_label_outside_0_1_names_the_row(tmp_path: Path) -> None:
    reviews = fake_reviews(2, seed=0)
    repository = imdb_hub_repository(tmp_path / "imdb", reviews)
    bad = {"train": {"text": ["fine", "odd"], "label": [1, -1]}, "test": {"text": ["ok"], "label": [0]}}
    write_hub_repository(repository, "plain_text", bad, IMDB_FEATURES)
    datamodule = text.TextDataModule(data_dir=tmp_path / "data", source="hub", hub_path=str(repository))
    datamodule.download()
    with pytest.raises(DataFormatError, match=r"train:2: label -1 of train row 1 is not 0 \(neg\) or 1 \(pos\)"):
        datamodule.prepare_data()


def test_tiny_text_s4d_trains_end_to_end(compose_train, tmp_path: Path) -> None:
    source = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", fake_reviews(180, seed=2))
    cfg = compose_train("data=text", "model=s4d", "profile=tiny", f"data.archives=[{source}]")
    assert cfg.data.max_length == 256 and cfg.data.n_train == 128
    record = run(cfg)
    assert record["status"] == "completed", record.get("message")
    assert record["metrics"]["test/majority_rate"] == 0.5


def test_a_hub_dataset_without_a_test_split_is_refused_and_nothing_is_saved(tmp_path: Path) -> None:
    repository = write_hub_repository(
        tmp_path / "no_test", "plain_text", {"train": {"text": ["fine"], "label": [1]}}, IMDB_FEATURES
    )
    datamodule = text.TextDataModule(data_dir=tmp_path / "data", source="hub", hub_path=str(repository))
    with pytest.raises(DownloadError) as refused:
        datamodule.download()
    message = str(refused.value)
    assert "is not laid out as this task reads it: no test split (it has train); nothing was saved" in message
    assert "Point data.hub_path (and data.hub_config) at a dataset with a train split of ['text', 'label']" in message
    assert not datamodule.hub_snapshot().exists()  # the advice (another dataset) is not blocked by a saved copy


def test_a_saved_snapshot_without_a_label_column_names_the_command_that_fetches_it_again(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    reviews = fake_reviews(2, seed=0)
    repository = imdb_hub_repository(tmp_path / "imdb", reviews)
    datamodule = text.TextDataModule(data_dir=tmp_path / "data", source="hub", hub_path=str(repository))
    snapshot = datamodule.hub_snapshot()
    unlabelled = DatasetDict({split: Dataset.from_dict({"text": ["a review"]}) for split in ("train", "test")})
    unlabelled.save_to_disk(str(snapshot))  # saved by an older version, or edited
    with pytest.raises(DataNotFoundError) as stale:
        datamodule.prepare_data()
    assert "its train split has no label column (it has ['text'])" in str(stale.value)
    assert f'rm -r {snapshot} && make data-text ARGS="data.source=hub"' in str(stale.value)
    shutil.rmtree(snapshot)  # following the advice
    datamodule.download()
    datamodule.prepare_data()


def test_a_hub_review_whose_text_is_null_names_the_row(tmp_path: Path) -> None:
    repository = imdb_hub_repository(tmp_path / "imdb", fake_reviews(2, seed=0))
    bad = {"train": {"text": ["fine", None], "label": [1, 0]}, "test": {"text": ["ok"], "label": [0]}}
    write_hub_repository(repository, "plain_text", bad, IMDB_FEATURES)
    datamodule = text.TextDataModule(data_dir=tmp_path / "data", source="hub", hub_path=str(repository))
    datamodule.download()
    with pytest.raises(DataFormatError, match=r"train:2: the text of train row 1 is None, not a review"):
        datamodule.prepare_data()
