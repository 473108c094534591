"""lra-eval: a checkpoint evaluates on its own and gives the numbers its run recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lra_snn.cli.eval import EvalError, check_compatible, main
from lra_snn.config import PROJECT_ROOT, compose_train
from lra_snn.tasks.classification import ClassificationTask
from lra_snn.tasks.stored_config import CONFIG_KEY
from lra_snn.training.cell import run
from tests.conftest import isolated_overrides


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A tiny causal S4D on ListOps, trained and tested by the train CLI: its result record."""
    tmp = tmp_path_factory.mktemp("eval")
    overrides = ["profile=tiny", "model=s4d", "model.encoder.layer.bidirectional=false", "torch_threads=1"]
    record = run(compose_train([*isolated_overrides(tmp), *overrides]))
    assert record["status"] == "completed"
    return record


def _eval(capsys, *args: str) -> dict:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_checkpoint_loads_with_no_other_argument(trained):
    task = ClassificationTask.load_from_checkpoint(trained["best_checkpoint"])
    assert task.stored_run is not None and task.stored_run["config"]["model"]["name"] == "s4d"
    assert task.encoder.encoder.num_embeddings == task.stored_run["encoder_inputs"]["vocab_size"]
    state = torch.load(trained["best_checkpoint"], weights_only=True)["state_dict"]
    assert all(torch.equal(value, task.state_dict()[key]) for key, value in state.items())


def test_eval_gives_the_recorded_test_and_val_numbers_exactly(trained, capsys):
    ckpt = f"ckpt_path={trained['best_checkpoint']}"
    test = _eval(capsys, ckpt)["metrics"]
    assert test["test/acc"] == trained["metrics"]["test/acc"]
    assert test["test/loss"] == trained["metrics"]["test/loss"]
    val = _eval(capsys, ckpt, "split=val")["metrics"]
    assert val["val/acc"] == trained["metrics"]["val/acc"]


def test_streaming_eval_gives_the_parallel_accuracy(trained, capsys):
    ckpt = f"ckpt_path={trained['best_checkpoint']}"
    parallel = _eval(capsys, ckpt, "trainer.precision=64-true")["metrics"]
    streamed = _eval(capsys, ckpt, "mode=stream", "trainer.precision=64-true")
    assert streamed["mode"] == "stream"
    assert streamed["metrics"]["test/acc"] == parallel["test/acc"]
    assert streamed["metrics"]["test/loss"] == pytest.approx(parallel["test/loss"], rel=1e-9)


def test_eval_on_longer_generated_sequences(trained, capsys):
    ckpt = f"ckpt_path={trained['best_checkpoint']}"
    longer = _eval(capsys, ckpt, "data.min_length=60", "data.max_length=120", "data.max_depth=5", "data.n_test=16")
    assert 0 <= longer["metrics"]["test/acc"] <= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["split=train"], "split='train'"),
        (["mode=fast"], "mode='fast'"),
        (["data.no_such_key=1"], "no_such_key"),
        (["data._target_=os.system"], "ALLOWED_TARGETS"),
        (["data=image"], "data=image: data is a section of the checkpoint's config, not a value"),
        (["model.encoder=x"], "model.encoder=x: model.encoder is a section of the checkpoint's config"),
        (["data.max_length=abc"], "invalid override value(s): data.max_length='abc': expected an integer >= 1"),
        (["data.n_test=0"], "data.n_test=0: expected an integer >= 1 or null"),
    ],
)
def test_bad_arguments_are_refused_by_name(trained, capsys, args, message):
    assert main([f"ckpt_path={trained['best_checkpoint']}", *args]) == 2
    assert message in capsys.readouterr().err


def test_checkpoint_without_config_is_refused(tmp_path, trained, capsys):
    checkpoint = torch.load(trained["best_checkpoint"], weights_only=True)
    del checkpoint[CONFIG_KEY]
    torch.save(checkpoint, tmp_path / "old.ckpt")
    assert main([f"ckpt_path={tmp_path / 'old.ckpt'}"]) == 2
    assert "carries no run config" in capsys.readouterr().err
    assert main(["split=test"]) == 2
    assert "missing ckpt_path" in capsys.readouterr().err


def test_data_that_does_not_fit_the_model_is_named():
    entry = {"encoder_inputs": {"vocab_size": 17}}
    task = SimpleNamespace(hparams={"n_classes": 10, "pair": False})
    data = SimpleNamespace(
        encoder_kwargs=lambda: {"vocab_size": 20}, task_kwargs=lambda: {"n_classes": 10, "pair": False}
    )
    with pytest.raises(EvalError, match=r"vocab_size: model 17, data 20"):
        check_compatible(entry, task, data, "checkpoint x.ckpt")  # type: ignore[arg-type]
    fitting = SimpleNamespace(encoder_kwargs=lambda: {"vocab_size": 17}, task_kwargs=data.task_kwargs)
    check_compatible(entry, task, fitting, "checkpoint x.ckpt")  # type: ignore[arg-type]


def test_command_line_prints_the_recorded_accuracy(trained):
    command = [sys.executable, "-m", "lra_snn.eval", f"ckpt_path={trained['best_checkpoint']}", "split=test"]
    finished = subprocess.run(command, cwd=PROJECT_ROOT, check=True, capture_output=True, text=True, timeout=300)
    printed = json.loads(finished.stdout.strip().splitlines()[-1])
    assert printed["metrics"]["test/acc"] == trained["metrics"]["test/acc"]


@pytest.mark.parametrize("damage", ["garbage", "hello", "cut short"])
def test_an_unreadable_checkpoint_is_named_with_the_files_to_use(tmp_path, trained, capsys, damage):
    bad = tmp_path / "bad.ckpt"
    whole = Path(trained["best_checkpoint"]).read_bytes()
    foreign = {"garbage": b"not a checkpoint\n", "hello": b"hello\n"}  # "hello": torch.load raises KeyError
    bad.write_bytes(foreign[damage] if damage in foreign else whole[: len(whole) // 3])
    assert main([f"ckpt_path={bad}"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"lra-eval: cannot read checkpoint {bad}: not a PyTorch checkpoint, or cut short (")
    assert "best.ckpt or last.ckpt under outputs/runs/<cell>/checkpoints/" in error
    assert "weights_only" not in error  # never the advice to load it unsafely


def test_a_stored_config_that_disagrees_with_the_weights_is_named(tmp_path, trained, capsys):
    checkpoint = torch.load(trained["best_checkpoint"], weights_only=True)
    checkpoint[CONFIG_KEY]["config"]["model"]["encoder"]["d_model"] += 4  # the config no longer builds these weights
    edited = tmp_path / "edited.ckpt"
    torch.save(checkpoint, edited)
    assert main([f"ckpt_path={edited}"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"lra-eval: checkpoint {edited}: its weights do not fit the model its stored config builds")
    assert "size mismatch" in error and "evaluate a checkpoint as its training wrote it" in error


def test_hyperparameters_that_differ_from_the_stored_config_are_named(tmp_path, trained, capsys):
    checkpoint = torch.load(trained["best_checkpoint"], weights_only=False)
    assert checkpoint["hyper_parameters"]["pool"] == "mean"
    checkpoint["hyper_parameters"]["pool"] = "last"  # the run config still says mean
    betas = checkpoint["hyper_parameters"]["betas"]
    checkpoint["hyper_parameters"]["betas"] = (betas[0], 0.5)  # a tuple of the same length, another value
    edited = tmp_path / "edited.ckpt"
    torch.save(checkpoint, edited)
    assert main([f"ckpt_path={edited}"]) == 2
    error = capsys.readouterr().err
    assert (
        f"checkpoint {edited}: its hyperparameters differ from its stored run config (pool: hyperparameters " in error
    )
    assert "'last', config 'mean'; betas: hyperparameters" in error and ", 0.5)" in error
