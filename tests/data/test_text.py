"""LRA Text (IMDB): the real archive's counts, byte and character tokenisation, validation choices,
subsets, the cache (vocabulary check, interrupted builds) and bad input, then one tiny training run."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from lra_snn.data import download, text
from lra_snn.data.download import ArchiveError, file_digests
from lra_snn.data.errors import CacheMismatchError, DataFormatError, DataNotFoundError
from lra_snn.data.tokens import EOS_ID, PAD_ID, UNK_ID
from lra_snn.cli.train import run

SHARED_ARCHIVE = Path("imdb") / "aclImdb_v1_posneg.tar.gz"


def fake_reviews(n_per_class: int, seed: int) -> dict[tuple[str, str], list[bytes]]:
    """Reviews per (split, sentiment): positive ones praise, negative ones complain (learnable by a tiny model)."""
    rng = np.random.default_rng(seed)
    words = {"pos": ["great", "wonderful", "loved", "superb"], "neg": ["awful", "boring", "hated", "dull"]}
    filler = ["the", "film", "was", "a", "plot", "actor", "and", "it", "<br />"]
    reviews = {}
    for split in ("train", "test"):
        for sentiment in ("pos", "neg"):
            reviews[split, sentiment] = [
                " ".join(rng.choice(filler + words[sentiment] * 2, size=int(rng.integers(5, 40)))).encode()
                for _ in range(n_per_class)
            ]
    return reviews


def write_imdb_archive(path: Path, reviews: dict[tuple[str, str], list[bytes]]) -> Path:
    """A tar.gz in the official layout, with the official archive's extra files that are not reviews."""
    extras = {"aclImdb/imdb.vocab": b"the\nfilm\n", "aclImdb/train/urls_pos.txt": b"http://x\n",
              "aclImdb/train/unsup/0_0.txt": b"unlabelled review"}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in extras.items():
            _add(tar, name, data)
        for (split, sentiment), texts in reviews.items():
            for review_id, data in enumerate(texts):
                rating = 8 if sentiment == "pos" else 2
                _add(tar, f"aclImdb/{split}/{sentiment}/{review_id}_{rating}.txt", data)
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


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


# --------------------------------------------------------------------------- the real archive


def test_real_archive_gives_25k_train_and_25k_test_balanced(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    source = shared_data / SHARED_ARCHIVE
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    started = time.perf_counter()
    datamodule = prepared(tmp_path, source)
    built_s = time.perf_counter() - started
    for split in ("train", "val", "test"):
        assert datamodule.class_counts(split).tolist() == [12_500, 12_500], split
    assert datamodule.splits["val"] is datamodule.splits["test"]  # test doubles as validation
    lengths = datamodule.splits["train"].lengths()
    assert lengths.max() == 4096 and lengths.min() > 1
    # the first negative training review, byte for byte (members are ordered by label, then id)
    with tarfile.open(source) as tar:
        raw = tar.extractfile("aclImdb/train/neg/0_3.txt").read()
    expected = np.frombuffer(raw[:4095], np.uint8).astype(np.int64) + 3
    assert np.array_equal(datamodule.splits["train"].sequence(0), np.append(expected, EOS_ID))

    monkeypatch.setattr(text, "read_imdb", lambda source: pytest.fail("a complete cache was rebuilt"))
    started = time.perf_counter()
    again = prepared(tmp_path, source)
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
    vocab = json.loads((datamodule.cache_dir() / text.VOCAB_FILE).read_text(encoding="utf-8"))["tokens"]
    assert vocab[:5] == ["<pad>", "<unk>", "<eos>", " ", "e"]  # space, then the most frequent letter


# --------------------------------------------------------------------------- tokenisers


def test_byte_tokens_are_utf8_bytes_plus_three_truncated_with_eos() -> None:
    tokenizer = text.ByteTokenizer(max_length=6)
    assert tokenizer.vocab_size == 259
    assert tokenizer.encode("Ab".encode()).tolist() == [65 + 3, 98 + 3, EOS_ID]
    assert tokenizer.encode("café!".encode()).tolist() == [99 + 3, 97 + 3, 102 + 3, 0xC3 + 3, 0xA9 + 3, EOS_ID]
    assert len(tokenizer.encode(b"x" * 100)) == 6


def test_character_vocabulary_by_frequency_with_min_freq_and_unknowns() -> None:
    documents = ["aaab", "abc", "ab"]  # a: 5, b: 3, c: 1
    tokenizer = text.CharTokenizer.from_documents([d.encode() for d in documents], min_freq=2, max_length=5)
    assert tokenizer.vocab == ("<pad>", "<unk>", "<eos>", "a", "b")
    assert tokenizer.encode("bcaé".encode()).tolist() == [4, UNK_ID, 3, UNK_ID, EOS_ID]
    assert tokenizer.encode("ééééééé".encode()).tolist() == [UNK_ID] * 4 + [EOS_ID]  # truncation counts characters


def test_character_vocabulary_counts_truncated_documents_only() -> None:
    tokenizer = text.CharTokenizer.from_documents([b"ab" + b"z" * 10], min_freq=1, max_length=3)
    assert tokenizer.vocab == ("<pad>", "<unk>", "<eos>", "a", "b")


# --------------------------------------------------------------------------- the data module


def test_batches_are_padded_token_ids_with_lengths(tmp_path: Path, archive: Path) -> None:
    datamodule = prepared(tmp_path, archive, max_length=16, batch_size=8)
    batch = next(iter(datamodule.val_dataloader()))
    assert batch["inputs"].shape == (8, batch["lengths"].max()) and batch["inputs"].max() < datamodule.vocab_size
    for row, length in zip(batch["inputs"], batch["lengths"]):
        assert row[length - 1] == EOS_ID and (row[length:] == PAD_ID).all()
    assert datamodule.encoder_kwargs() == {"vocab_size": 259}
    assert datamodule.task_kwargs() == {"n_classes": 2, "pair": False}


def test_labels_follow_the_folders_and_extra_files_are_ignored(tmp_path: Path) -> None:
    reviews = {("train", "pos"): [b"good"], ("train", "neg"): [b"bad", b"worse"], ("test", "pos"): [b"fine"],
               ("test", "neg"): [b"poor"]}
    read = text.read_imdb(write_imdb_archive(tmp_path / "a.tar.gz", reviews))
    assert read["train"].texts == [b"bad", b"worse", b"good"] and read["train"].labels.tolist() == [0, 0, 1]
    assert read["train"].names[0] == "aclImdb/train/neg/0_2.txt"


def test_an_unpacked_folder_reads_like_the_archive(tmp_path: Path, archive: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    from_archive, from_folder = text.read_imdb(archive), text.read_imdb(tmp_path / "unpacked")
    for split in ("train", "test"):
        assert from_folder[split].texts == from_archive[split].texts
        assert np.array_equal(from_folder[split].labels, from_archive[split].labels)


def test_validation_held_out_of_train_is_disjoint_and_seeded(tmp_path: Path, archive: Path) -> None:
    datamodule = prepared(tmp_path, archive, val_split="train", val_fraction=0.25, split_seed=3)
    train = {datamodule.splits["train"].sequence(i).tobytes() for i in range(len(datamodule.splits["train"]))}
    val = {datamodule.splits["val"].sequence(i).tobytes() for i in range(len(datamodule.splits["val"]))}
    assert (len(datamodule.splits["train"]), len(datamodule.splits["val"])) == (30, 10)
    assert not train & val and len(datamodule.splits["test"]) == 40
    other_seed = prepared(tmp_path, archive, val_split="train", val_fraction=0.25, split_seed=4)
    assert other_seed.cache_dir() != datamodule.cache_dir()


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
    vocab = json.loads((datamodule.cache_dir() / text.VOCAB_FILE).read_text(encoding="utf-8"))
    assert vocab["level"] == "char" and datamodule.vocab_size == len(vocab["tokens"]) < 259
    assert datamodule.splits["train"].tokens.max() < datamodule.vocab_size


def test_a_vocabulary_file_that_disagrees_with_the_cache_is_refused(tmp_path: Path, archive: Path) -> None:
    datamodule = prepared(tmp_path, archive, level="char", min_freq=3)
    vocab_file = datamodule.cache_dir() / text.VOCAB_FILE
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    vocab["tokens"][3], vocab["tokens"][4] = vocab["tokens"][4], vocab["tokens"][3]
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    for step in ("prepare_data", "setup"):
        with pytest.raises(CacheMismatchError, match=re.escape(f"{text.VOCAB_FILE} has sha256")):
            getattr(module(tmp_path, archive, level="char", min_freq=3), step)()


def test_byte_cache_with_a_character_vocabulary_is_refused(tmp_path: Path, archive: Path) -> None:
    datamodule = prepared(tmp_path, archive)
    char_cache = prepared(tmp_path, archive, level="char", min_freq=3).cache_dir()
    for name in (text.VOCAB_FILE, text.CONTENTS_FILE):
        (datamodule.cache_dir() / name).write_bytes((char_cache / name).read_bytes())
    with pytest.raises(CacheMismatchError, match="not a byte-level vocabulary"):
        module(tmp_path, archive).setup()


def test_missing_archives_name_every_candidate_and_the_make_target(tmp_path: Path) -> None:
    datamodule = text.TextDataModule(data_dir=tmp_path, archives=[tmp_path / "a.tar.gz", tmp_path / "b"])
    with pytest.raises(DataNotFoundError, match="make data-text") as raised:
        datamodule.prepare_data()
    assert str(tmp_path / "a.tar.gz") in str(raised.value) and str(tmp_path / "b") in str(raised.value)
    default = text.TextDataModule(data_dir=tmp_path)
    assert default.archives == [tmp_path / "downloads" / "aclImdb_v1.tar.gz"]


def test_download_fetches_the_tarball_where_prepare_data_looks(tmp_path: Path, archive: Path, monkeypatch) -> None:
    source = download.Source(url=archive.as_uri(), filename="aclImdb_v1.tar.gz", size=archive.stat().st_size,
                             sha256=file_digests(archive, ("sha256",))["sha256"])
    monkeypatch.setitem(download.SOURCES, "imdb", source)
    datamodule = text.TextDataModule(data_dir=tmp_path / "data")
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
        text.read_imdb(write_imdb_archive(tmp_path / "a.tar.gz", reviews))


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
    with pytest.raises(DataFormatError, match=re.escape("a.tar.gz/aclImdb/train/pos/1_8.txt:2: review is not valid UTF-8")):
        module(tmp_path, source, level="char", min_freq=1).prepare_data()
    assert prepared(tmp_path, source).class_counts("train").tolist() == [3, 3]  # bytes need no decoding


def test_interrupted_preparation_is_never_read_as_complete(tmp_path: Path, archive: Path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    datamodule = module(tmp_path, archive)
    monkeypatch.setattr(text, "save_tokenizer", interrupted)  # after every split is written, before the vocabulary
    with pytest.raises(KeyboardInterrupt):
        datamodule.prepare_data()
    with pytest.raises(DataNotFoundError, match="call prepare_data"):
        datamodule.setup()
    monkeypatch.undo()
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.class_counts("test").tolist() == [20, 20]


def test_bad_settings_are_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="level must be one of"):
        text.TextDataModule(data_dir="d", level="word")
    with pytest.raises(ValueError, match="val_split must be one of"):
        text.TextDataModule(data_dir="d", val_split="eval")
    with pytest.raises(ValueError, match="n_val applies to val_split='train' only"):
        text.TextDataModule(data_dir="d", n_val=10)
    with pytest.raises(ValueError, match="max_length counts EOS"):
        text.TextDataModule(data_dir="d", max_length=1)


def test_tiny_text_s4d_trains_end_to_end(compose_train, tmp_path: Path) -> None:
    source = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz", fake_reviews(180, seed=2))
    cfg = compose_train("data=text", "model=s4d", "profile=tiny", f"data.archives=[{source}]")
    assert cfg.data.max_length == 256 and cfg.data.n_train == 128
    record = run(cfg)
    assert record["status"] == "completed", record.get("message")
    assert record["metrics"]["test/majority_rate"] == 0.5
