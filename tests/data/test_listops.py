"""ListOps: evaluator against the original release's labels, LRA-recipe generator, TSV reader errors,
tokenizer, padded batches, the DataModule end to end, and the same batches without ``datasets``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lra_snn.config import PROJECT_ROOT
from lra_snn.data.collate import collate_tokens
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.listops import generate as listops
from lra_snn.data.listops.module import ListOpsDataModule
from lra_snn.data.listops.source import iter_rows
from lra_snn.data.tokenizers import EOS_ID, PAD_ID
from lra_snn.data.views import Ragged, TokenRows
from tests.data.conftest import TINY_LISTOPS
from tests.fakes import write_listops_release

FULL_BOUNDS = {"max_depth": 10, "max_args": 10, "min_length": 500, "max_length": 2000}


def test_evaluate_reproduces_every_label_of_the_original_listops_test_file(shared_data: Path) -> None:
    path = shared_data / "listops-spinn" / "test_d20s.tsv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    rows = list(iter_rows(path, header=False, label_first=True))
    assert len(rows) == 10_000
    labels = np.array([row["label"] for row in rows])
    predicted = np.array([listops.evaluate(row["expression"]) for row in rows])
    assert np.array_equal(predicted, labels), f"{int((predicted != labels).sum())} labels differ"


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("( ( ( ( [MAX 2 ) 9 ) 4 ) ] )", 9),
        ("( ( ( ( [MIN 6 ) 3 ) 5 ) ] )", 3),
        ("( ( ( ( [MED 9 ) 1 ) 4 ) ] )", 4),  # odd count: the middle value
        ("( ( ( [MED 2 ) 5 ) ] )", 3),  # even count: (2 + 5) / 2 = 3.5, truncated
        ("( ( ( ( ( [MED 1 ) 7 ) 3 ) 8 ) ] )", 5),  # sorted 1 3 7 8: (3 + 7) / 2
        ("( ( ( ( [SM 9 ) 8 ) 7 ) ] )", 4),  # 24 mod 10
        # MAX(MIN(3, 1), 0, SM(5, 8)) = MAX(1, 0, 3)
        ("( ( ( ( [MAX ( ( ( [MIN 3 ) 1 ) ] ) ) 0 ) ( ( ( [SM 5 ) 8 ) ] ) ) ] )", 3),
        ("7", 7),
    ],
)
def test_evaluate_hand_computed(expression: str, value: int) -> None:
    assert listops.evaluate(expression) == value


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("( ( [MAX 2 ) 9 ) ] )", "unbalanced parentheses"),
        ("( ( ( [MAX 2 ) 9 ) )", "unbalanced brackets"),
        ("( ( ( [MAX 2 ) 9 ) ] ] )", "unbalanced brackets"),
        ("( ( ( [AVG 2 ) 9 ) ] )", "unknown token '[AVG'"),
        ("( [MAX ] )", "no arguments"),
        ("( ( ( [MAX 2 ) 9 ) ] ) 4", "more than one top-level"),
        ("( )", "only parentheses"),
        ("   ", "empty expression"),
    ],
)
def test_parse_names_what_is_malformed(expression: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        listops.parse(expression)


def test_generate_at_full_settings_respects_lengths_and_operators() -> None:
    examples = listops.generate(60, seed=3, **FULL_BOUNDS)
    assert len({expression for expression, _ in examples}) == 60
    for expression, label in examples:
        assert 500 < len(listops.parse(expression)) < 2000
        assert set(re.findall(r"\[\w*", expression)) <= {"[MAX", "[MIN", "[MED", "[SM"}
        assert listops.evaluate(expression) == label


def _operator_nesting_and_arg_counts(expression: str) -> tuple[int, list[int]]:
    """Deepest operator nesting and the argument count of every operator of ``expression``."""
    open_args: list[int] = []
    deepest, counts = 0, []
    for token in listops.ListOpsTokenizer().decode(listops.parse(expression)):
        if token.startswith("["):
            open_args.append(0)
            deepest = max(deepest, len(open_args))
        elif token == "]":
            counts.append(open_args.pop())
            if open_args:
                open_args[-1] += 1
        elif open_args:
            open_args[-1] += 1
    return deepest, counts


def test_generate_respects_depth_and_argument_bounds() -> None:
    # LRA: nodes at depth < max_depth may be operators, so operators nest at most max_depth - 1 deep.
    examples = listops.generate(300, seed=2, max_depth=3, max_args=4, min_length=4, max_length=40)
    nesting, counts = zip(*(_operator_nesting_and_arg_counts(e) for e, _ in examples))
    assert max(nesting) == 2
    assert {c for per_tree in counts for c in per_tree} == {2, 3, 4}


def test_generate_rejects_impossible_bounds() -> None:
    with pytest.raises(ValueError, match="at most 4 tokens"):
        listops.generate(5, seed=0, max_depth=2, max_args=2, min_length=4, max_length=10)
    with pytest.raises(ValueError, match="strictly between"):
        listops.generate(5, seed=0, min_length=500, max_length=501)


def test_generate_stops_when_too_few_distinct_trees_exist() -> None:
    # max_depth 2, max_args 2, length 4 only: 4 operators x 100 digit pairs = 400 distinct trees.
    with pytest.raises(RuntimeError, match="found only 400 of 500"):
        listops.generate(500, seed=0, max_depth=2, max_args=2, min_length=3, max_length=5, max_draws=50_000)


def _write_small_full_release(directory: Path, seed: int) -> Path:
    return write_listops_release(directory, n_train=12, n_val=4, n_test=4, seed=seed, **FULL_BOUNDS)


def test_same_seed_gives_byte_identical_release_files(tmp_path: Path) -> None:
    first = _write_small_full_release(tmp_path / "a", seed=11)
    second = _write_small_full_release(tmp_path / "b", seed=11)
    other = _write_small_full_release(tmp_path / "c", seed=12)
    assert first == tmp_path / "a" / "listops-1000"
    for name in ("basic_train.tsv", "basic_val.tsv", "basic_test.tsv"):
        data = (first / name).read_bytes()
        assert data.startswith(b"Source\tTarget\r\n")
        assert data == (second / name).read_bytes()
        assert data != (other / name).read_bytes()


def test_round_trip_generate_write_read_evaluate(tmp_path: Path) -> None:
    examples = listops.generate(20, seed=5, **FULL_BOUNDS)
    folder = write_listops_release(tmp_path, n_train=12, n_val=4, n_test=4, seed=5, **FULL_BOUNDS)
    read_back = []
    for name, count in (("basic_train.tsv", 12), ("basic_val.tsv", 4), ("basic_test.tsv", 4)):
        rows = list(iter_rows(folder / name))
        assert len(rows) == count and [row["line"] for row in rows] == list(range(2, count + 2))
        assert [listops.evaluate(row["expression"]) for row in rows] == [row["label"] for row in rows]
        read_back += [(row["expression"], row["label"]) for row in rows]
    assert read_back == examples


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


GOOD = "( ( ( [MAX 2 ) 9 ) ] )\t9"


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ("( ( ( [MAX 2 ) 9 ) ] )\t9\textra", "expected 2 tab-separated columns, found 3"),
        ("( ( ( [MAX 2 ) 9 ) ] )", "expected 2 tab-separated columns, found 1"),
        ("", "expected 2 tab-separated columns, found 1"),
        ("( ( ( [MAX 2 ) 9 ) ] )\t12", "label 12 is outside 0-9"),
        ("( ( ( [MAX 2 ) 9 ) ] )\tnine", "label 'nine' is not an integer"),
        ("( ( ( [MAX 2 ) 9 ) ] ] )\t9", "unbalanced brackets"),
        ("( ( ( [MAX 2 ) 9 ) )\t9", "unbalanced brackets"),
        ("( ( ( [MAX 2 ) x ) ] )\t9", "unknown token 'x'"),
    ],
)
def test_reader_names_file_and_line_of_a_malformed_line(tmp_path: Path, bad_line: str, problem: str) -> None:
    path = _write_lines(tmp_path / "basic_train.tsv", ["Source\tTarget", GOOD, bad_line, GOOD])
    with pytest.raises(DataFormatError, match=re.escape(problem)) as error:
        list(iter_rows(path))
    assert f"{path}:3:" in str(error.value)
    assert error.value.line == 3


def test_reader_names_the_line_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "basic_train.tsv"
    path.write_bytes(b"Source\tTarget\r\n" + GOOD.encode() + b"\r\n( ( ( [MAX 2 ) \xff ) ] )\t9\r\n")
    with pytest.raises(DataFormatError, match=re.escape(f"{path}:3: not valid UTF-8")):
        list(iter_rows(path))


@pytest.mark.parametrize(
    ("content", "problem"), [(b"Source\tTarget\r\n", "holds no examples (only a header)"), (b"", "the file is empty")]
)
def test_a_file_without_examples_is_an_error_before_training(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "basic_test.tsv"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=f"{re.escape(str(path))}:1: .*{re.escape(problem)}"):
        list(iter_rows(path))


def test_header_only_release_file_stops_preparation(tmp_path: Path) -> None:
    folder = write_listops_release(
        tmp_path, n_train=4, n_val=2, n_test=2, seed=1, max_depth=3, max_args=3, min_length=3, max_length=30
    )
    (folder / "basic_val.tsv").write_bytes(b"Source\tTarget\r\n")
    module = ListOpsDataModule(data_dir=tmp_path / "data", source="release", release_dir=folder, batch_size=4)
    with pytest.raises(DataFormatError, match=re.escape(f"{folder / 'basic_val.tsv'}:1: the file holds no examples")):
        module.prepare_data()


def test_reader_requires_the_header_of_lra_files(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "basic_val.tsv", [GOOD])
    with pytest.raises(DataFormatError, match=f"{re.escape(str(path))}:1: expected the header"):
        list(iter_rows(path))


def test_reader_reads_crlf_lines_and_label_first_files(tmp_path: Path) -> None:
    path = tmp_path / "crlf.tsv"
    path.write_bytes(b"Source\tTarget\r\n( ( ( [MIN 2 ) 9 ) ] )\t2\r\n")
    assert [row["expression"] for row in iter_rows(path)] == ["( ( ( [MIN 2 ) 9 ) ] )"]
    spinn = _write_lines(tmp_path / "spinn.tsv", ["4\t( ( ( [SM 2 ) 2 ) ] )"])
    assert list(iter_rows(spinn, header=False, label_first=True)) == [
        {"expression": "( ( ( [SM 2 ) 2 ) ] )", "label": 4, "line": 1}
    ]


def test_missing_file_names_the_path_and_the_make_target(tmp_path: Path) -> None:
    path = tmp_path / "listops-1000" / "basic_test.tsv"
    with pytest.raises(DataNotFoundError) as error:
        list(iter_rows(path))
    assert str(path) in str(error.value) and "make data-listops" in str(error.value)
    assert isinstance(error.value, FileNotFoundError)


def test_tokenizer_vocabulary_specials_and_eos() -> None:
    tokenizer = listops.ListOpsTokenizer()
    assert tokenizer.vocab_size == 18
    assert tokenizer.vocab[:3] == ("<pad>", "<unk>", "<eos>")
    assert (tokenizer.vocab.index("<pad>"), tokenizer.vocab.index("<eos>")) == (PAD_ID, EOS_ID)
    ids = tokenizer.encode("( ( ( ( [SM 2 ) 9 ) 4 ) ] )")
    assert ids.dtype == np.int16
    assert tokenizer.decode(ids) == ["[SM", "2", "9", "4", "]", "<eos>"]


def test_tokenizer_never_truncates() -> None:
    expression = "( ( ( ( [SM 2 ) 9 ) 4 ) ] )"  # 5 tokens + EOS
    assert len(listops.ListOpsTokenizer(max_length=6).encode(expression)) == 6
    with pytest.raises(ValueError, match="exceed max_length=5"):
        listops.ListOpsTokenizer(max_length=5).encode(expression)


def test_an_expression_too_long_for_max_seq_len_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "listops-1000"
    folder.mkdir()
    for name in ("basic_train.tsv", "basic_val.tsv", "basic_test.tsv"):
        _write_lines(folder / name, ["Source\tTarget", GOOD, "( ( ( ( [SM 2 ) 9 ) 4 ) ] )\t5"])
    module = ListOpsDataModule(data_dir=tmp_path / "data", source="release", release_dir=tmp_path, max_seq_len=5)
    expected = re.escape(f"{folder / 'basic_train.tsv'}:3:") + r".*exceed max_length=5 \(data\.max_seq_len\)"
    with pytest.raises(DataFormatError, match=expected):
        module.prepare_data()


def test_collate_pads_to_the_longest_sequence_and_returns_lengths() -> None:
    sequences = [np.array([3, 8, 9, 7, 2]), np.array([12, 2]), np.array([4, 10, 11, 7, 2, 5, 6])]
    rows = TokenRows(Ragged.from_sequences(sequences, np.dtype(np.int16)), np.array([1, 9, 0]))
    batch = collate_tokens(rows.__getitems__([0, 1, 2]))
    assert set(batch) == {"inputs", "lengths", "labels"}
    assert batch["inputs"].shape == (3, 7) and batch["inputs"].dtype == torch.long
    assert batch["lengths"].tolist() == [5, 2, 7] and batch["lengths"].dtype == torch.long
    assert batch["labels"].tolist() == [1, 9, 0] and batch["labels"].dtype == torch.long
    for row, sequence in enumerate(sequences):
        assert batch["inputs"][row, : len(sequence)].tolist() == sequence.tolist()
        assert (batch["inputs"][row, len(sequence) :] == PAD_ID).all()


def test_datamodule_end_to_end_on_the_tiny_profile(tiny_listops) -> None:
    module = tiny_listops(eval_batch_size=64)
    assert (module.task, module.n_classes, module.vocab_size, module.input_kind) == ("listops", 10, 18, "tokens")
    module.prepare_data()
    module.setup("fit")
    for split, size in (("train", 120), ("val", 30), ("test", 30)):
        counts = module.class_counts(split)
        assert counts.shape == (10,) and counts.sum() == size
    batch = next(iter(module.train_dataloader()))
    assert batch["inputs"].shape[0] == 16 and batch["inputs"].dtype == torch.long
    assert batch["inputs"].shape[1] == int(batch["lengths"].max())
    rows = torch.arange(16)
    assert (batch["inputs"][rows, batch["lengths"] - 1] == EOS_ID).all()
    assert ((batch["lengths"] >= 5 + 1) & (batch["lengths"] <= 39 + 1)).all()
    val_labels = [b["labels"] for b in module.val_dataloader()]
    assert len(val_labels) == 1 and val_labels[0].tolist() == module.split("val").labels.tolist()


def test_datamodule_reads_the_release_layout(tmp_path: Path) -> None:
    write_listops_release(
        tmp_path / "lra_release" / "lra_release",
        n_train=6,
        n_val=2,
        n_test=2,
        seed=1,
        max_depth=4,
        max_args=4,
        min_length=5,
        max_length=60,
    )
    module = ListOpsDataModule(data_dir=tmp_path / "data", source="release", release_dir=tmp_path, batch_size=4)
    module.prepare_data()
    module.setup("test")
    assert module.class_counts("train").sum() == 6
    assert next(iter(module.test_dataloader()))["inputs"].shape[0] == 2


def test_datamodule_release_missing_names_path_and_make_target(tmp_path: Path) -> None:
    module = ListOpsDataModule(data_dir=tmp_path / "data", source="release", release_dir=tmp_path / "lra", batch_size=4)
    with pytest.raises(DataNotFoundError) as error:
        module.prepare_data()
    assert str(tmp_path / "lra") in str(error.value) and "make data-lra" in str(error.value)
    assert "data.source=generate" in str(error.value)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_an_empty_split_size_is_refused_naming_its_key_before_anything_is_built(
    tiny_listops, tmp_path: Path, split: str
) -> None:
    with pytest.raises(ValueError) as refused:
        tiny_listops(**{f"n_{split}": 0})
    assert str(refused.value) == (
        f"data.n_{split}=0: every split needs at least one example; set data.n_{split} to a positive count, "
        f"e.g. data.n_{split}=64"
    )
    assert not (tmp_path / "data").exists()
    # the advice: the suggested size
    module = tiny_listops(**{f"n_{split}": 64})
    module.prepare_data()
    module.setup()
    assert len(module.split(split)) == 64


def test_datamodule_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="source must be one of"):
        ListOpsDataModule(data_dir=tmp_path, source="download")
    with pytest.raises(ValueError, match="needs release_dir"):
        ListOpsDataModule(data_dir=tmp_path, source="release")
    with pytest.raises(ValueError, match="split must be one of"):
        ListOpsDataModule(data_dir=tmp_path).class_counts("dev")
    with pytest.raises(ValueError, match="num_proc >= 1"):
        ListOpsDataModule(data_dir=tmp_path, num_proc=0)


WITHOUT_DATASETS = """
import json, sys
sys.modules["datasets"] = None  # as on a machine without datasets (and without pyarrow)
sys.modules["pyarrow"] = None
import torch
from lra_snn.data.listops.module import ListOpsDataModule
torch.manual_seed(3)
module = ListOpsDataModule(data_dir=sys.argv[1], source="generate", batch_size=16, **json.loads(sys.argv[2]))
module.prepare_data()
module.setup()
batches = {"train": [b["inputs"].tolist() for b in module.train_dataloader()],
           "test": [b["labels"].tolist() for b in module.test_dataloader()]}
print(json.dumps(batches))
"""


def test_without_datasets_the_same_batches_come_from_memory(tiny_listops, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_DATASETS, str(tmp_path / "memory"), json.dumps(TINY_LISTOPS)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "`datasets` is not installed: ListOps examples are generated and tokenised in memory" in done.stderr
    assert not (tmp_path / "memory").exists()
    module = tiny_listops()
    module.prepare_data()
    module.setup()
    torch.manual_seed(3)
    cached = {
        "train": [b["inputs"].tolist() for b in module.train_dataloader()],
        "test": [b["labels"].tolist() for b in module.test_dataloader()],
    }
    assert json.loads(done.stdout) == cached
