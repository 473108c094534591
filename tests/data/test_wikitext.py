"""WikiText-103 data: reading and vocabulary, the cached ids, windows that score every token once,
unigram perplexity on real WikiText-2 against an independent count, missing files, the download
path from a file:// archive, and the Hub path on a local Hub-layout folder."""

from __future__ import annotations

import hashlib
import math
import re
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Features, Value

from lra_snn.data import download, store
from lra_snn.data.errors import CacheRebuiltWarning, DataFormatError, DataNotFoundError
from lra_snn.data.wikitext103 import module as wikitext
from lra_snn.data.wikitext103.module import (
    EOS,
    IGNORE_INDEX,
    UNK,
    ChunkedStream,
    StreamWindows,
    Vocabulary,
    WikiTextDataModule,
)
from lra_snn.data.wikitext103.source import release_dataset
from lra_snn.metrics.perplexity import Perplexity
from tests.fakes import write_hub_repository

# WikiText-2 shares WikiText-103's valid and test sets: Merity et al. (2016), Table 1.
PUBLISHED_TOKENS = {"valid": 217_646, "test": 245_569}

TRAIN_LINES = [" The cat sat . \n", " \n", " the Cat <unk> the . \n"]
VALID_LINES = [" the dog . \n"]
TEST_LINES = [" \n", " = Cat = \n", " The cat sat on the Cat . \n"]


def write_corpus(folder: Path, train=TRAIN_LINES, valid=VALID_LINES, test=TEST_LINES) -> Path:
    """Write wiki.{train,valid,test}.tokens in WikiText's format (space-separated tokens, leading space)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"wiki.{split}.tokens").write_text("".join(lines), encoding="utf-8")
    return folder


def words_with_eos(path: Path) -> list[str]:
    """The reference reading, written independently of the module: split each line, add <eos>."""
    return [word for line in path.read_text(encoding="utf-8").split("\n")[:-1] for word in [*line.split(), EOS]]


@pytest.fixture
def corpus_module(tmp_path: Path):
    """Factory of data modules over a small corpus written in tmp_path/src."""

    def build(**settings) -> WikiTextDataModule:
        source = settings.pop("source_dir", tmp_path / "src")
        if not source.exists():
            write_corpus(source)
        return WikiTextDataModule(data_dir=tmp_path / "data", source_dir=source, **settings)

    return build


@pytest.fixture
def wikitext2(shared_data: Path, tmp_path: Path) -> WikiTextDataModule:
    """WikiText-2 valid as "train" (there is no train file here) and valid, test as test; 3 x 1000 windows."""
    folder = shared_data / "wikitext-2"
    if not (folder / "test.txt").is_file():
        pytest.skip(f"{folder}/test.txt is absent")
    module = WikiTextDataModule(
        data_dir=tmp_path / "data",
        source_dir=folder,
        train_file="valid.txt",
        valid_file="valid.txt",
        test_file="test.txt",
        max_length=1000,
        global_batch=3,
    )
    module.prepare_data()
    module.setup()
    return module


# --------------------------------------------------------------------------- reading and vocabulary


def test_vocabulary_keeps_case_puts_eos_after_every_line_and_ranks_by_count(corpus_module) -> None:
    module = corpus_module(max_length=4, global_batch=1)
    module.prepare_data()
    module.setup()
    vocab = module.vocabulary
    # counts: <eos> 3, "." 2, "the" 2, then the singletons in order of first occurrence
    assert vocab.tokens == [EOS, ".", "the", "The", "cat", "sat", "Cat", UNK]
    assert vocab.counts.tolist() == [3, 2, 2, 1, 1, 1, 1, 1]
    assert module.encoder_kwargs() == module.task_kwargs() == {"vocab_size": 8}
    ids = {token: i for i, token in enumerate(vocab.tokens)}
    train = [ids[w] for w in ["The", "cat", "sat", ".", "<eos>", "<eos>", "the", "Cat", "<unk>", "the", ".", "<eos>"]]
    assert np.array_equal(module.streams["train"], train)
    # "dog" never occurs in train: it becomes <unk> and is counted
    assert np.array_equal(module.streams["valid"], [ids["the"], ids[UNK], ids["."], ids[EOS]])
    assert module.unseen_counts() == {"train": 0, "valid": 1, "test": 3}  # test: "=" twice, "on"
    assert module.token_counts() == {"train": 12, "valid": 4, "test": 13}


def test_vocabulary_adds_absent_specials_and_round_trips_through_its_file(tmp_path: Path) -> None:
    vocab = Vocabulary.from_counts(Counter({"b": 1, "a": 3, EOS: 2}))
    assert vocab.tokens == ["a", EOS, "b", UNK] and vocab.counts.tolist() == [3, 2, 1, 0]
    vocab.save(tmp_path / "vocab.txt")
    again = Vocabulary.load(tmp_path / "vocab.txt")
    assert again.tokens == vocab.tokens and again.counts.tolist() == vocab.counts.tolist()
    assert (again.unk_id, again.eos_id) == (3, 1)
    (tmp_path / "bad.txt").write_text("a\t3\nb 1\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.txt:2: expected 'token<TAB>count'"):
        Vocabulary.load(tmp_path / "bad.txt")


def test_real_wikitext_token_counts_match_the_published_figures(wikitext2: WikiTextDataModule, shared_data) -> None:
    counts = wikitext2.token_counts()
    assert counts["valid"] == PUBLISHED_TOKENS["valid"] and counts["test"] == PUBLISHED_TOKENS["test"]
    assert counts["train"] == counts["valid"]  # valid stands in as train
    reference_types = set(words_with_eos(shared_data / "wikitext-2" / "valid.txt"))
    test_words = words_with_eos(shared_data / "wikitext-2" / "test.txt")
    assert len(wikitext2.vocabulary) == len(reference_types)
    assert wikitext2.unseen_counts() == {
        "train": 0,
        "valid": 0,
        "test": sum(word not in reference_types for word in test_words),
    }


def test_a_line_that_is_not_utf8_names_its_file_and_line(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "src")
    (folder / "wiki.valid.tokens").write_bytes(b" fine line \n \xff broken \n")
    files = {split: f"wiki.{split}.tokens" for split in ("train", "valid", "test")}
    with pytest.raises(DataFormatError, match=r"wiki\.valid\.tokens:2: not valid UTF-8"):
        release_dataset(folder, files)


def test_a_split_file_of_blank_lines_is_refused_before_training(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "src")
    (folder / "wiki.test.tokens").write_text(" \n\n   \n \n")
    module = WikiTextDataModule(data_dir=tmp_path / "data", source_dir=folder)
    with pytest.raises(DataFormatError, match=r"wiki\.test\.tokens:1: the file holds only blank lines"):
        module.prepare_data()


def test_an_empty_split_file_is_refused(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "src", test=[])
    module = WikiTextDataModule(data_dir=tmp_path / "data", source_dir=folder)
    with pytest.raises(DataFormatError, match=r"wiki\.test\.tokens:1: the file holds no lines"):
        module.prepare_data()


# --------------------------------------------------------------------------- windows


def collect_rows(windows: StreamWindows) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """Per row: scored targets, their inputs, and each window's length, in window order."""
    rows = len(windows.row_lengths)
    targets, inputs, lengths = [[] for _ in range(rows)], [[] for _ in range(rows)], [[] for _ in range(rows)]
    for batch in windows:
        assert batch["inputs"].shape == batch["targets"].shape == (rows, windows.max_length)
        assert batch["inputs"].dtype == batch["targets"].dtype == torch.int64
        for r, n in enumerate(batch["lengths"].tolist()):
            targets[r] += batch["targets"][r, :n].tolist()
            inputs[r] += batch["inputs"][r, :n].tolist()
            lengths[r].append(n)
            assert (batch["targets"][r, n:] == IGNORE_INDEX).all()
    return targets, inputs, lengths


def chunked(stream: np.ndarray, cuts: list[int]) -> ChunkedStream:
    """``stream`` held in several chunks, cut at ``cuts`` (as an Arrow column of many record batches is)."""
    return ChunkedStream(np.split(stream, cuts))


@pytest.mark.parametrize(("n_tokens", "rows", "max_length"), [(103, 4, 7), (96, 4, 8), (50, 3, 100), (11, 11, 1)])
@pytest.mark.parametrize("storage", ["array", "chunks"])
def test_windows_score_every_token_once_with_targets_shifted_by_one(n_tokens, rows, max_length, storage) -> None:
    stream = np.random.default_rng(n_tokens).integers(3, 1000, n_tokens).astype(np.int32)
    served = stream if storage == "array" else chunked(stream, [1, 5, n_tokens // 2, n_tokens // 2 + 1])
    windows = StreamWindows(served, rows, max_length, context_id=2)
    targets, inputs, lengths = collect_rows(windows)
    assert np.array_equal(np.concatenate(targets), stream)  # every token a target, once, in order
    assert np.array_equal(np.concatenate(inputs), np.concatenate([[2], stream[:-1]]))  # the previous token
    assert max(len(r) for r in targets) - min(len(r) for r in targets) <= 1  # rows differ by at most one token
    for row in lengths:  # full windows of max_length, then at most one partial one
        assert len(row) == len(windows) and all(n == max_length for n in row[:-1]) and 0 < row[-1] <= max_length


def test_a_chunked_stream_reads_positions_and_prefixes_across_chunks() -> None:
    stream = np.arange(100, 130, dtype=np.int32)
    chunks = chunked(stream, [3, 3, 10, 29])
    positions = np.array([[0, 2, 3, 9], [10, 28, 29, 5]])
    assert np.array_equal(chunks[positions], stream[positions]) and len(chunks) == 30
    assert np.array_equal(np.asarray(chunks.prefix(11)), stream[:11]) and len(chunks.prefix(99)) == 30


def test_ranks_share_the_rows_and_serve_equally_many_windows() -> None:
    stream = np.arange(3, 3 + 101, dtype=np.int32)
    shards = [StreamWindows(stream, 4, 6, context_id=2, rank=rank, world_size=2) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(StreamWindows(stream, 4, 6, context_id=2))
    targets = [row for shard in shards for row in collect_rows(shard)[0]]
    assert np.array_equal(np.concatenate(targets), stream)
    with pytest.raises(ValueError, match="multiple of the device count"):
        StreamWindows(stream, 3, 6, context_id=2, rank=0, world_size=2)


def test_data_loader_workers_serve_windows_in_order(corpus_module) -> None:
    module = corpus_module(max_length=2, global_batch=2, num_workers=2)
    module.prepare_data()
    module.setup()
    batches = list(module.train_dataloader())
    expected = [module.windows("train").window(i) for i in range(len(module.windows("train")))]
    assert len(batches) == len(expected) == 3
    for got, want in zip(batches, expected):
        assert all(torch.equal(got[key], want[key]) for key in want)


def test_token_limits_serve_a_prefix_of_each_stream(corpus_module) -> None:
    module = corpus_module(max_length=3, global_batch=2, max_train_tokens=5, max_eval_tokens=2)
    module.prepare_data()
    module.setup()
    assert module.token_counts() == {"train": 5, "valid": 2, "test": 2}
    served = sum(int(batch["lengths"].sum()) for batch in module.test_dataloader())
    assert served == 2 and module.summary_metrics() == {"test/tokens": 2.0, "test/unseen_tokens": 3.0}


def test_too_many_rows_or_bad_sizes_are_refused(corpus_module) -> None:
    module = corpus_module(max_length=3, global_batch=5)
    module.prepare_data()
    module.setup()
    with pytest.raises(ValueError, match="a stream of 4 tokens cannot fill 5 rows; lower global_batch"):
        module.val_dataloader()
    with pytest.raises(ValueError, match="global_batch must be a positive integer"):
        corpus_module(global_batch=0)


# --------------------------------------------------------------------------- the done-when: unigram perplexity


def test_unigram_perplexity_through_the_metric_matches_an_independent_count(wikitext2, shared_data) -> None:
    # the unigram model of the "train" stream (WikiText-2 valid), its log-probabilities fed as logits
    counts = torch.from_numpy(wikitext2.vocabulary.counts).double()
    log_probs = torch.log_softmax(torch.log(counts / counts.sum()), dim=-1)
    metric = Perplexity()
    partial_windows = 0
    for batch in wikitext2.test_dataloader():
        scored = torch.arange(batch["targets"].shape[1])[None, :] < batch["lengths"][:, None]
        metric.update(-log_probs[batch["targets"][scored]])
        partial_windows += int((batch["lengths"] < wikitext2.max_length).any())
    assert partial_windows == 1 and int(metric.tokens) == PUBLISHED_TOKENS["test"]

    # independent count in plain Python: unigram counts of valid, test tokens unseen in valid read as <unk>
    train_counts = Counter(words_with_eos(shared_data / "wikitext-2" / "valid.txt"))
    total = sum(train_counts.values())
    test_words = words_with_eos(shared_data / "wikitext-2" / "test.txt")
    log_likelihood = sum(math.log(train_counts.get(word, train_counts[UNK]) / total) for word in test_words)
    expected = math.exp(-log_likelihood / len(test_words))
    assert math.isclose(float(metric.compute()), expected, rel_tol=1e-9)
    assert 100 < expected < 5000  # a unigram model of English words


# --------------------------------------------------------------------------- cache


def test_second_prepare_reuses_the_cache(corpus_module, monkeypatch) -> None:
    first = corpus_module(max_length=4, global_batch=2)
    first.prepare_data()
    directory = first.cache_dir()
    stamp = (directory / store.META_FILE).stat().st_mtime_ns

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cache was rebuilt although it was complete")

    monkeypatch.setattr(wikitext, "count_tokens", no_rebuild)
    monkeypatch.setattr(wikitext, "encode_lines", no_rebuild)
    second = corpus_module(max_length=16, global_batch=1)  # serving settings share the cache
    second.prepare_data()
    assert second.vocab_size == 8  # known from the cache before setup
    second.setup()
    assert second.cache_dir() == directory and (directory / store.META_FILE).stat().st_mtime_ns == stamp
    assert second.vocab_size == first.vocab_size == 8


def test_changed_source_gets_a_new_cache_and_a_damaged_one_is_rebuilt(corpus_module, tmp_path: Path) -> None:
    module = corpus_module(max_length=4, global_batch=2)
    module.prepare_data()
    old = module.cache_dir()
    with open(tmp_path / "src" / "wiki.train.tokens", "a", encoding="utf-8") as handle:
        handle.write(" a new line . \n")
    assert module.cache_dir() != old
    module.prepare_data()
    module.setup()
    assert module.vocab_size == 11 and module.token_counts()["train"] == 17

    (module.cache_dir() / wikitext.VOCAB_FILE).write_text("the\t1\n", encoding="utf-8")
    with pytest.raises(DataNotFoundError, match=r"cache damaged: vocab\.txt is 6 bytes"):
        module.setup()
    with pytest.warns(CacheRebuiltWarning, match=re.escape(str(module.cache_dir()))):
        module.prepare_data()
    module.setup()
    assert len(module.vocabulary) == 11


def test_setup_before_prepare_says_what_to_run(corpus_module) -> None:
    with pytest.raises(DataNotFoundError, match="call prepare_data"):
        corpus_module().setup()


# --------------------------------------------------------------------------- missing files and download


def test_missing_files_name_the_path_and_the_make_target(tmp_path: Path) -> None:
    module = WikiTextDataModule(data_dir=tmp_path / "data")
    with pytest.raises(DataNotFoundError) as error:
        module.prepare_data()
    message = str(error.value)
    assert "make data-wikitext103" in message
    assert str(tmp_path / "data" / "downloads" / "wikitext-103" / "wiki.train.tokens") in message
    write_corpus(tmp_path / "partial").joinpath("wiki.test.tokens").unlink()
    with pytest.raises(DataNotFoundError, match=r"wiki\.test\.tokens.*make data-wikitext103"):
        WikiTextDataModule(data_dir=tmp_path / "data", source_dir=tmp_path / "partial").prepare_data()


def test_download_unpacks_the_archive_into_source_dir(tmp_path: Path, monkeypatch) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    archive = tmp_path / "served" / "wikitext-103-v1.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zipped:  # the release's layout: wikitext-103/wiki.*.tokens
        for path in sorted(corpus.iterdir()):
            zipped.write(path, f"wikitext-103/{path.name}")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(
        download.SOURCES,
        "wikitext103",
        download.Source(url=archive.as_uri(), filename="wikitext-103-v1.zip", size=archive.stat().st_size, md5=md5),
    )

    module = WikiTextDataModule(data_dir=tmp_path / "data", max_length=4, global_batch=2)
    folder = module.download()
    assert folder == tmp_path / "data" / "downloads" / "wikitext-103" / "wikitext-103"
    assert (tmp_path / "data" / "downloads" / "wikitext-103-v1.zip").is_file()
    module.prepare_data()
    module.setup()
    assert module.token_counts() == {"train": 12, "valid": 4, "test": 13}
    archive.unlink()  # files present: a second download() fetches nothing
    assert module.download() == folder


# --------------------------------------------------------------------------- the Hub


def test_hub_source_reads_a_hub_layout_folder_like_the_release(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "src")
    # the Hub's rows: one per line of the release files, with its line break; empty lines as ""
    splits = {
        hub: {
            "text": [
                line if line.strip() else ""
                for line in (folder / f"wiki.{split}.tokens").read_text(encoding="utf-8").splitlines(keepends=True)
            ]
        }
        for split, hub in (("train", "train"), ("valid", "validation"), ("test", "test"))
    }
    repository = write_hub_repository(
        tmp_path / "Salesforce_wikitext", "wikitext-103-v1", splits, Features({"text": Value("string")})
    )
    hub = WikiTextDataModule(
        data_dir=tmp_path / "data", source="hub", hub_path=str(repository), max_length=4, global_batch=2
    )
    with pytest.raises(DataNotFoundError, match=re.escape('make data-wikitext103 ARGS="data.source=hub"')):
        hub.prepare_data()
    hub.download()
    hub.prepare_data()
    hub.setup()
    release = WikiTextDataModule(data_dir=tmp_path / "data", source_dir=folder, max_length=4, global_batch=2)
    release.prepare_data()
    release.setup()
    assert hub.vocabulary.tokens == release.vocabulary.tokens and hub.token_counts() == release.token_counts()
    for split in ("train", "valid", "test"):
        assert np.array_equal(np.asarray(hub.streams[split]), np.asarray(release.streams[split]))
