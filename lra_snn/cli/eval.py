"""Evaluate a checkpoint: ``lra-eval ckpt_path=<best.ckpt> [split=test|val] [mode=parallel|stream] [key=value ...]``.

The checkpoint carries its run's resolved config (``lra_snn.tasks.stored_config``), so nothing else
is needed: the task class, the encoder and the data come from that config, after every ``_target_``
in it (overrides included) is checked against the project's own (``ALLOWED_TARGETS``). Other
``key=value`` arguments override the stored config before the data is built, e.g.
``data.min_length=200 data.max_length=400`` for longer ListOps sequences or ``data.eval_batch_size=8``;
a key the config lacks is an error. The model itself is never changed by an override: its weights
and sizes are the checkpoint's. The data must fit the model (same ``vocab_size`` or ``d_input``,
same classes, same pairing), else the error names both values.

``mode=parallel`` (default) runs the training forward; ``mode=stream`` runs the model one step at a
time from its step forms (``lra_snn.models.streaming``; a model that cannot stream is refused with
the reason). ``exact_neurons=true`` swaps every neuron that approximates another (SpikingSSMs' surrogate
dynamic network) for the exact neuron it stands for: how much of the accuracy the approximation carries.
The metrics are computed by the task's own test (or validation) step on one CPU or GPU
device at the run's precision, so a parallel evaluation of the test split gives the ``test/*``
numbers of the run's ``result.json``. Prints the metrics as one JSON object; exit status 2 on a bad
argument or an incompatible checkpoint.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError

from lra_snn.models.streaming import StreamingError
from lra_snn.tasks.base import SequenceTask
from lra_snn.tasks.stored_config import StoredConfigError, check_allowed, read_stored
from lra_snn.training.surrogate_agreement import exact_neurons
from lra_snn.training.validate import override_problems

SPLITS = ("test", "val")
MODES = ("parallel", "stream")
OWN_KEYS = ("ckpt_path", "split", "mode", "exact_neurons")
FLAGS = ("false", "true")


class EvalError(ValueError):
    """The evaluation cannot run as asked; the message names the argument, key or file and the fix."""


def parse_args(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """This command's own ``key=value`` arguments (``OWN_KEYS``) and the config overrides, in order."""
    own: dict[str, str] = {}
    overrides = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise EvalError(f"argument {arg!r} is not key=value (e.g. ckpt_path=path/to/best.ckpt split=test)")
        if key in OWN_KEYS:
            own[key] = value
        else:
            overrides.append(arg)
    if "ckpt_path" not in own:
        raise EvalError("missing ckpt_path=<checkpoint>, e.g. outputs/runs/<cell>/checkpoints/best.ckpt")
    if own.setdefault("split", "test") not in SPLITS:
        raise EvalError(f"split={own['split']!r}: choose one of {SPLITS}")
    if own.setdefault("mode", "parallel") not in MODES:
        raise EvalError(f"mode={own['mode']!r}: choose one of {MODES}")
    if own.setdefault("exact_neurons", "false") not in FLAGS:
        raise EvalError(f"exact_neurons={own['exact_neurons']!r}: choose true or false")
    return own, overrides


def eval_config(stored: Mapping[str, Any], overrides: Sequence[str], where: str) -> DictConfig:
    """The stored config with ``overrides`` applied (existing keys only), its targets checked."""
    check_allowed(stored, where)
    for override in overrides:
        key = override.partition("=")[0]
        node = OmegaConf.select(OmegaConf.create(dict(stored)), key, default=None)
        if isinstance(node, (dict, DictConfig)):
            raise EvalError(
                f"{override}: {key} is a section of the checkpoint's config, not a value; lra-eval evaluates the "
                f"model on the data it was trained for and overrides single keys only, e.g. {key}.max_length=..."
            )
    base = OmegaConf.create(dict(stored))
    OmegaConf.set_struct(base, True)
    try:
        cfg = OmegaConf.merge(base, OmegaConf.from_dotlist(list(overrides)))
    except ConfigKeyError as error:
        raise EvalError(f"override not in the checkpoint's config: {error.msg}") from None
    assert isinstance(cfg, DictConfig)
    problems = override_problems(cfg, [override.partition("=")[0] for override in overrides])
    if problems:
        raise EvalError(f"invalid override value(s): {'; '.join(problems)}")
    check_allowed(OmegaConf.to_container(cfg, resolve=True), f"{where} with overrides {list(overrides)}")  # type: ignore[arg-type]
    return cfg


def check_compatible(entry: Mapping[str, Any], task: SequenceTask, datamodule: Any, where: str) -> None:
    """EvalError unless the data has the encoder's input size and the task's classes / vocabulary."""
    expected = {**entry["encoder_inputs"], **{key: task.hparams[key] for key in datamodule.task_kwargs()}}
    found = {**datamodule.encoder_kwargs(), **datamodule.task_kwargs()}
    wrong = [
        f"{key}: model {expected.get(key)!r}, data {value!r}"
        for key, value in found.items()
        if expected.get(key) != value
    ]
    if wrong:
        raise EvalError(
            f"{where} does not fit this data ({'; '.join(wrong)}); evaluate it on data of the task it was "
            "trained on, overriding only sizes that the model does not fix (lengths, counts, batch size)"
        )


def _plain(value: Any) -> Any:
    """``value`` with tuples as lists (a config keeps lists where Lightning keeps the constructor's tuples)."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def check_hyperparameters(task: SequenceTask, cfg: DictConfig, where: str) -> None:
    """EvalError when a task setting the checkpoint's Lightning hyperparameters hold differs from its stored
    run config's ``task`` section (one of the two was edited after training)."""
    container = OmegaConf.to_container(cfg.task, resolve=True)
    assert isinstance(container, dict)
    stored = {str(key): value for key, value in container.items()}
    wrong = [
        f"{key}: hyperparameters {task.hparams[key]!r}, config {value!r}"
        for key, value in stored.items()
        if key in task.hparams and _plain(task.hparams[key]) != _plain(value)
    ]
    if wrong:
        raise EvalError(
            f"{where}: its hyperparameters differ from its stored run config ({'; '.join(wrong)}); the checkpoint "
            "was changed after training: evaluate a checkpoint as its training wrote it"
        )


def build(ckpt_path: str | Path, overrides: Sequence[str] = ()) -> tuple[SequenceTask, Any, DictConfig]:
    """The task of the checkpoint, its data module (prepared) and the config both came from."""
    where = f"checkpoint {ckpt_path}"
    if not Path(ckpt_path).is_file():
        raise EvalError(f"ckpt_path={ckpt_path}: no such file")
    entry = read_stored(ckpt_path)
    cfg = eval_config(entry["config"], overrides, where)
    task_class = get_class(cfg.task._target_)
    if not (isinstance(task_class, type) and issubclass(task_class, SequenceTask)):
        raise EvalError(f"{where}: task._target_ {cfg.task._target_!r} is not a SequenceTask")
    try:
        task = task_class.load_from_checkpoint(ckpt_path, map_location="cpu")
    except RuntimeError as error:  # the weights' names or shapes are not those of the model the config builds
        detail = " ".join(str(error).split())[:300]
        raise EvalError(
            f"{where}: its weights do not fit the model its stored config builds ({detail}); the checkpoint or its "
            "stored config was changed after training: evaluate a checkpoint as its training wrote it"
        ) from None
    check_hyperparameters(task, cfg, where)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    check_compatible(entry, task, datamodule, where)
    return task, datamodule, cfg


def evaluate(
    task: SequenceTask, datamodule: Any, cfg: DictConfig, split: str, mode: str, exact: bool = False
) -> dict[str, float]:
    """Metrics of ``split`` in ``mode``, by the task's own step, at the run's accelerator and precision; with
    ``exact``, every neuron that approximates another (SpikingSSMs' SDN) fires the exact neuron's spikes."""
    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg.torch_threads))
    if mode == "stream":
        task.stream()
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=1,
        precision=cfg.trainer.precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    run = trainer.test if split == "test" else trainer.validate
    with warnings.catch_warnings(), exact_neurons(task) if exact else nullcontext(1) as swapped:
        if not swapped:
            raise EvalError("exact_neurons=true: the checkpoint's model has no neuron that approximates another")
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        (metrics,) = run(task, datamodule=datamodule, verbose=False)
    return {key: float(value) for key, value in metrics.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (``lra-eval``, ``python -m lra_snn.cli.eval``)."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        return 0
    try:
        own, overrides = parse_args(argv)
        task, datamodule, cfg = build(own["ckpt_path"], overrides)
        metrics = evaluate(task, datamodule, cfg, own["split"], own["mode"], own["exact_neurons"] == "true")
    except (EvalError, StoredConfigError, StreamingError) as error:
        print(f"lra-eval: {error}", file=sys.stderr)
        return 2
    shown = {key: own[key] for key in ("split", "mode", "exact_neurons")}
    print(json.dumps({"checkpoint": own["ckpt_path"], **shown, "metrics": metrics}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
