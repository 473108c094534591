"""Trainer options: bf16 on the GPU by default, torch.compile, gradient accumulation, and what a run prints
(Rich's bar only at a terminal, one logged line per epoch)."""

from __future__ import annotations

import io
import logging
import math
import re
import warnings

import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar

from lra_snn.config import cell_hash
from lra_snn.training.build import build_trainer
from lra_snn.training.cell import RunFailed, run
from lra_snn.training.progress import LIBRARY_INFO_LOGGERS, EpochLine, interactive_progress_bar, quiet_libraries

TINY = ("data=listops", "model=s4d", "profile=tiny")
EPOCH_LINE = re.compile(r"epoch (\d+)/2: train/loss (\S+), val/acc (\d+\.\d\d) %, \d+\.\d s")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_gpu_trainer_is_bf16_mixed_and_float32_is_an_override_and_another_cell(compose_train):
    gpu = compose_train(*TINY, "trainer=gpu")
    assert (gpu.trainer.accelerator, gpu.trainer.precision) == ("gpu", "bf16-mixed")
    float32 = compose_train(*TINY, "trainer=gpu", "trainer.precision=32-true")
    assert cell_hash(gpu) != cell_hash(float32)  # the precision changes the computation
    assert cell_hash(float32) == cell_hash(compose_train(*TINY))  # the device alone does not


def test_compile_leaves_the_cell_alone_and_accumulation_does_not(compose_train):
    base = cell_hash(compose_train(*TINY))
    assert cell_hash(compose_train(*TINY, "trainer.compile=true")) == base
    assert cell_hash(compose_train(*TINY, "trainer.accumulate_grad_batches=4")) != base
    # configs written before the key existed name the same cells as accumulation over 1 batch
    assert cell_hash(compose_train(*TINY, "~trainer.accumulate_grad_batches")) == base


def test_accumulation_reaches_lightning_and_compile_is_not_passed_to_it(compose_train):
    trainer = build_trainer(compose_train(*TINY, "trainer.accumulate_grad_batches=3", "trainer.compile=true"), [])
    assert trainer.accumulate_grad_batches == 3
    assert sum(isinstance(c, EpochLine) for c in trainer.callbacks) == 1


def test_rich_bar_only_at_a_terminal_and_only_when_enabled(compose_train, monkeypatch):
    assert isinstance(interactive_progress_bar(True, Terminal()), RichProgressBar)
    assert interactive_progress_bar(True, io.StringIO()) is None  # a log file or pipe: no bar at all
    assert interactive_progress_bar(False, Terminal()) is None

    monkeypatch.setattr("sys.stdout", Terminal())
    bar = build_trainer(compose_train(*TINY, "trainer.enable_progress_bar=true"), []).progress_bar_callback
    assert isinstance(bar, RichProgressBar)
    assert build_trainer(compose_train(*TINY), []).progress_bar_callback is None  # the tests' overrides: off
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert build_trainer(compose_train(*TINY, "trainer.enable_progress_bar=true"), []).progress_bar_callback is None


@pytest.fixture
def library_log_levels():
    """The library loggers' levels, restored after the test."""
    levels = {name: logging.getLogger(name).level for name in LIBRARY_INFO_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_data_store_bars_only_at_a_terminal(library_log_levels):
    datasets = pytest.importorskip("datasets")
    try:
        quiet_libraries(Terminal())
        assert datasets.is_progress_bar_enabled()
        quiet_libraries(io.StringIO())
        assert not datasets.is_progress_bar_enabled()
    finally:
        datasets.enable_progress_bars()


def test_library_chatter_is_silenced_and_warnings_stay(library_log_levels):
    quiet_libraries(io.StringIO())
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger(name).isEnabledFor(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_libraries(io.StringIO())
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", DeprecationWarning, stacklevel=1)
        warnings.warn("The 'train_dataloader' does not have many workers which may be a bottleneck.", stacklevel=1)
        warnings.warn("something the user must see", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something the user must see"]


def test_every_epoch_logs_one_plain_line(compose_train, caplog):
    with caplog.at_level(logging.INFO, logger="lra_snn.training.progress"):
        record = run(compose_train(*TINY))
    lines = [r.getMessage() for r in caplog.records if r.name == "lra_snn.training.progress"]
    assert len(lines) == 2 and all("\r" not in line for line in lines), lines
    parsed = [EPOCH_LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    assert [int(match.group(1)) for match in parsed] == [1, 2]  # type: ignore[union-attr]
    assert all(math.isfinite(float(match.group(2))) for match in parsed)  # type: ignore[union-attr]
    # the last line's validation metric is the last epoch's (the checkpoint evaluated may be another)
    assert 0.0 <= float(parsed[-1].group(3)) <= 100.0 and record["status"] == "completed"  # type: ignore[union-attr]


def test_a_compile_value_that_is_not_a_flag_is_named(compose_train):
    with pytest.raises(RunFailed, match=r"trainer\.compile='yes': expected true or false"):
        run(compose_train(*TINY, "trainer.compile=yes"))


@pytest.mark.slow  # inductor compiles the encoder for each batch shape: minutes on a busy CPU
def test_a_compiled_tiny_run_trains_with_a_finite_loss(compose_train):
    torch._dynamo.reset()
    overrides = ("trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1")
    record = run(compose_train(*TINY, *overrides, "+trainer.limit_test_batches=1", "trainer.compile=true"))
    assert record["status"] == "completed" and record["steps"] == 2
    assert all(math.isfinite(record["metrics"][key]) for key in ("val/loss", "test/loss"))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # the encoder ran compiled
