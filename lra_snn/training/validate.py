"""Checks of the composed train config, before any data, model or trainer is built.

Each checked key has a rule (``lra_snn.config.rules``) in ``RULES``, or, for the options of the configured
neuron, in its class's ``option_rules``: its type and allowed range. A key that the config does not have
is not checked; a key under ``model.encoder.layer.neuron`` that the neuron's constructor does not take is
refused.
Then come pairs of keys where one bounds the other (``ORDERED``), the training length (max_epochs
or max_steps), the recipe check: a recipe chosen on the command line is the one of the cell's
profile, model family and task (``conf/recipe/full/<family>/<task>.yaml``), and the release check: a
task that reads the LRA release (``data.source=release``, the full recipes' default) finds it unpacked
at ``data.release_dir``.
``validate_config`` raises one ``ConfigError`` that lists every problem, one line each, e.g.
``trainer.max_epochs='abc': expected an integer >= 1``.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lra_snn.config.locations import inside_shipped_runs, shipped_runs_refusal
from lra_snn.config.rules import (
    DROPOUT,
    FRACTION,
    NON_NEGATIVE,
    NULL,
    POSITIVE,
    SIZE,
    SIZE_OR_NULL,
    AnyOf,
    Flag,
    Integer,
    ListOf,
    Number,
    OneOf,
    Rule,
    show,
)
from lra_snn.data.errors import DataNotFoundError
from lra_snn.data.listops.source import locate_release as locate_listops
from lra_snn.data.pathfinder.source import locate_release as locate_pathfinder
from lra_snn.models.backbone import NORMS
from lra_snn.models.blocks import MIXERS
from lra_snn.models.s4d import S4D_INITS
from lra_snn.neurons import NEURONS, Neuron, neuron_class
from lra_snn.ops.dispatch import BACKENDS
from lra_snn.ops.surrogate import SURROGATES
from lra_snn.tasks.classification import POOLS


class ConfigError(CompactHydraException, ValueError):
    """The composed config has values no run can use; ``problems`` holds one line per bad key.

    A Hydra run prints the message alone, without a traceback, and exits with status 1."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = (
            "1 invalid config value; set it"
            if len(problems) == 1
            else f"{len(problems)} invalid config values; set each"
        )
        super().__init__(
            f"{head} to an allowed value on the command line (key=value) or in the file under conf/ "
            "that sets it:\n" + "\n".join(f"  {problem}" for problem in problems)
        )


# Lightning 2's precision names (the legacy 16 / 32 / 64 / "bf16" spellings are deprecated there)
PRECISIONS = ("64-true", "32-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed")
# limit_*_batches: a batch count, or a fraction of the split
BATCH_LIMIT = AnyOf((SIZE, Number(0.0, 1.0, low_open=True)))

# key -> rule, for every key the train config may carry
RULES: dict[str, Rule] = {
    "seed": Integer(0, 2**32 - 1),  # the range Lightning's seed_everything accepts
    "torch_threads": AnyOf((Integer(low=0), NULL)),  # 0 or null: torch's default
    "skip_completed": Flag(),
    "trainer.max_epochs": AnyOf((SIZE, OneOf((None, -1)))),  # null / -1: trainer.max_steps ends the run
    "trainer.max_steps": AnyOf((SIZE, OneOf((-1,)))),
    "trainer.devices": AnyOf((SIZE, OneOf((-1, "auto")), ListOf(Integer(low=0)))),
    "trainer.num_nodes": SIZE,
    "trainer.precision": OneOf(PRECISIONS),
    "trainer.accumulate_grad_batches": SIZE,
    "trainer.gradient_clip_val": AnyOf((NON_NEGATIVE, NULL)),
    "trainer.log_every_n_steps": SIZE,
    "trainer.check_val_every_n_epoch": AnyOf((SIZE, NULL)),
    "trainer.limit_train_batches": BATCH_LIMIT,
    "trainer.limit_val_batches": BATCH_LIMIT,
    "trainer.limit_test_batches": BATCH_LIMIT,
    "trainer.deterministic": AnyOf((Flag(), OneOf(("warn",)))),
    "trainer.enable_progress_bar": Flag(),
    "trainer.enable_model_summary": Flag(),
    "model.encoder.d_model": SIZE,
    "model.encoder.n_layers": SIZE,
    "model.encoder.dropout": DROPOUT,
    "model.encoder.norm": OneOf(NORMS),
    "model.encoder.prenorm": Flag(),
    "model.encoder.layer.d_state": Integer(low=2, even=True),  # S4D: d_state / 2 complex modes
    "model.encoder.layer.bidirectional": Flag(),
    "model.encoder.layer.init": OneOf(S4D_INITS),
    "model.encoder.layer.trainable_B": Flag(),
    "model.encoder.layer.learnable_vth": Flag(),
    "model.encoder.layer.tie_dropout": Flag(),
    "model.encoder.tie_dropout": Flag(),
    "model.encoder.layer.mixer": OneOf(MIXERS),
    "model.encoder.layer.dropout": DROPOUT,
    "model.encoder.layer.dt_min": POSITIVE,
    "model.encoder.layer.dt_max": POSITIVE,
    "model.encoder.layer.spatial_threshold": POSITIVE,
    "model.encoder.layer.surrogate": OneOf(SURROGATES),
    "model.encoder.layer.neuron.backend": OneOf((None, *BACKENDS)),
    "task.lr": POSITIVE,
    "task.dynamics_lr": NON_NEGATIVE,  # 0 freezes the SSM and neuron dynamics
    "task.weight_decay": NON_NEGATIVE,
    "task.betas": ListOf(Number(0.0, 1.0, high_open=True), length=2),
    "task.warmup_steps": Integer(low=0),
    "task.total_steps": SIZE_OR_NULL,  # null: epochs x batches per epoch
    "task.pool": OneOf(POOLS),
    "task.cutoffs": ListOf(SIZE, increasing=True),
    "task.div_value": POSITIVE,
    "task.tie_weights": Flag(),
    "task.tie_projections": Flag(),
    "task.softmax_dropout": DROPOUT,
    "task.init_scale": POSITIVE,
    "task.bias_scale": NON_NEGATIVE,
    "model.encoder.embedding.dropout": DROPOUT,
    "model.encoder.embedding.div_value": POSITIVE,
    "monitor.mode": OneOf(("min", "max")),
    "data.n_train": SIZE_OR_NULL,  # null: the whole split
    "data.n_val": SIZE_OR_NULL,
    "data.n_test": SIZE_OR_NULL,
    "data.n_images": SIZE,
    "data.images_per_batch": SIZE,
    "data.batch_size": SIZE,
    "data.eval_batch_size": SIZE_OR_NULL,  # null: batch_size
    "data.global_batch": SIZE,
    "data.eval_global_batch": SIZE_OR_NULL,
    "data.min_length": SIZE,
    "data.max_length": SIZE,
    "data.max_depth": SIZE,
    "data.max_args": SIZE,
    "data.min_freq": SIZE,
    "data.max_train_tokens": SIZE_OR_NULL,  # null: the whole stream
    "data.max_eval_tokens": SIZE_OR_NULL,
    "data.val_fraction": FRACTION,
    "data.test_fraction": FRACTION,
    "data.num_workers": Integer(low=0),
    "data.num_proc": SIZE,
}

NEURON = "model.encoder.layer.neuron"
WIRING_KEYS = ("_target_", "_partial_", "name")  # the neuron config's own keys, not constructor options
# (a, b): a must not exceed b, where both are set
ORDERED: tuple[tuple[str, str], ...] = (
    ("model.encoder.layer.dt_min", "model.encoder.layer.dt_max"),
    (f"{NEURON}.delta_min", f"{NEURON}.delta_max"),
    (f"{NEURON}.T", f"{NEURON}.max_T"),  # the PSN layer holds T^2 weights: max_T caps it
    ("data.min_length", "data.max_length"),
    ("task.warmup_steps", "task.total_steps"),
)

# task_name -> where its data.source=release files are (DataNotFoundError naming `make data-lra` when absent);
# these tasks can generate their data instead (data.source=generate). Retrieval has no generator: a
# missing release is its data module's DataNotFoundError, recorded as a no_data result.
RELEASE_LOCATORS: dict[str, Callable[[DictConfig], Path]] = {
    "listops": lambda data: locate_listops(data.release_dir),
    "pathfinder": lambda data: locate_pathfinder(data.release_dir, data.resolution),
    "pathx": lambda data: locate_pathfinder(data.release_dir, data.resolution),
}

_ABSENT = object()


def _lookup(cfg: DictConfig, key: str) -> object:
    """The resolved value at ``key`` as plain Python (lists as lists), or ``_ABSENT``."""
    value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _source(cfg: DictConfig, key: str) -> str:
    """`` (from ${...})`` when the value at ``key`` is an interpolation (the key to set), else ``""``."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig) or not OmegaConf.is_interpolation(parent, leaf):
        return ""
    raw = OmegaConf.to_container(parent, resolve=False)
    assert isinstance(raw, dict)
    return f" (from {raw[leaf]})"


def _configured_neuron(cfg: DictConfig) -> type[Neuron] | None:
    """The class of the configured neuron (None: no neuron, or a name the registry does not know)."""
    name = OmegaConf.select(cfg, f"{NEURON}.name", default=None)
    return neuron_class(name) if isinstance(name, str) and name in NEURONS else None


def _checked_rules(cfg: DictConfig) -> dict[str, Rule]:
    """``RULES`` plus the option rules the configured neuron declares (``Neuron.option_rules``)."""
    name = OmegaConf.select(cfg, f"{NEURON}.name", default=None)
    neuron = _configured_neuron(cfg)
    own = neuron.option_rules if neuron is not None else {}
    neuron_name = {f"{NEURON}.name": OneOf(tuple(NEURONS))} if name is not None else {}
    return {**RULES, **neuron_name, **{f"{NEURON}.{option}": rule for option, rule in own.items()}}


def _unknown_options(cfg: DictConfig) -> list[str]:
    """The keys under ``model.encoder.layer.neuron`` that the configured neuron's constructor does not take."""
    neuron = _configured_neuron(cfg)
    node = OmegaConf.select(cfg, NEURON, default=None)
    if neuron is None or not isinstance(node, DictConfig):
        return []
    taken = [name for name, p in inspect.signature(neuron).parameters.items() if p.kind is p.KEYWORD_ONLY]
    return [
        f"{NEURON}.{key}: not an option of neuron {node.name!r} (its options: {', '.join(taken)}); drop it"
        for key in map(str, node)
        if key not in (*WIRING_KEYS, *taken)
    ]


def _value_problems(cfg: DictConfig) -> tuple[list[str], dict[str, object]]:
    """One line per key whose value breaks its rule, and the valid values found (by key)."""
    problems, valid = [], {}
    for key, rule in _checked_rules(cfg).items():
        try:
            value = _lookup(cfg, key)
        except OmegaConfBaseException as error:
            problems.append(
                f"{key}: cannot be read ({type(error).__name__}: {str(error).splitlines()[0]}); "
                f"expected {rule.describe()}"
            )
            continue
        if value is _ABSENT:
            continue
        if rule.accepts(value):
            valid[key] = value
        else:
            problems.append(f"{key}={show(value)}{_source(cfg, key)}: expected {rule.describe()}")
    return problems, valid


def override_problems(cfg: DictConfig, keys: list[str]) -> list[str]:
    """One line per key of ``keys`` (values set on a config already built, e.g. ``lra-eval``'s overrides)
    whose value in ``cfg`` breaks its rule; the other keys are left as their run had them."""
    rules = _checked_rules(cfg)
    problems = []
    for key in keys:
        if key not in rules:
            continue
        value = _lookup(cfg, key)
        if value is not _ABSENT and not rules[key].accepts(value):
            problems.append(f"{key}={show(value)}: expected {rules[key].describe()}")
    return problems


def _relation_problems(cfg: DictConfig, valid: dict[str, object]) -> list[str]:
    """The pairs of ``ORDERED`` in the wrong order, and a run without an end (no epochs, no steps)."""
    problems = []
    for small, large in ORDERED:
        a, b = valid.get(small), valid.get(large)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > b:
            problems.append(
                f"{small}={show(a)}{_source(cfg, small)} exceeds {large}={show(b)}{_source(cfg, large)}: "
                f"lower {small.rpartition('.')[2]} or raise {large.rpartition('.')[2]}"
            )
    epochs, steps = valid.get("trainer.max_epochs", 1), valid.get("trainer.max_steps", -1)
    if epochs in (None, -1) and steps == -1:
        problems.append(
            f"trainer.max_epochs={show(epochs)} with trainer.max_steps unset: expected an integer "
            ">= 1 for trainer.max_epochs, or trainer.max_steps set to an integer >= 1"
        )
    return problems


def _recipe_problems(choices: Mapping[str, str | None]) -> list[str]:
    """A recipe chosen on the command line for another model family or task than the cell's: the recipe
    of a cell is ``<profile>/<family>/<task>``, chosen from the profile, the model's family and the task
    (a recipe of the cell's family and task at another profile is allowed: its settings over smaller data)."""
    recipe = choices.get("recipe")
    family, task = choices.get("family"), choices.get("data")
    if not recipe or recipe.split("/")[1:] == [family, task]:
        return []
    return [
        f"recipe={recipe} is not a recipe of this cell (model={choices.get('model')} of family {family}, "
        f"data={task}: {choices.get('profile')}/{family}/{task}): drop recipe=, or choose the model and data it "
        "was written for"
    ]


def _release_problems(cfg: DictConfig) -> list[str]:
    """One line when ``data.source=release`` and the task's release files are not at ``data.release_dir``."""
    locate = RELEASE_LOCATORS.get(str(cfg.get("task_name")))
    if locate is None or OmegaConf.select(cfg, "data.source", default=None) != "release":
        return []
    try:
        locate(cfg.data)
    except (DataNotFoundError, ValueError) as missing:
        return [f"data.source='release' (data.release_dir={show(_lookup(cfg, 'data.release_dir'))}): {missing}"]
    return []


def hydra_choices() -> Mapping[str, str | None]:
    """The config group choices of the current Hydra run (empty outside one)."""
    if not HydraConfig.initialized():
        return {}
    choices = OmegaConf.to_container(HydraConfig.get().runtime.choices)
    assert isinstance(choices, dict)
    return {str(group): None if option is None else str(option) for group, option in choices.items()}


# where a run writes: each folder, then the path derived from it (named only when the folder is not)
WRITTEN_PATHS = (("paths.results_dir", "paths.result_file"), ("paths.output_dir", "paths.run_dir"))


def _shipped_runs_problems(cfg: DictConfig) -> list[str]:
    """A folder a run writes to that lies inside the shipped runs (read-only to every command)."""
    problems = []
    for keys in WRITTEN_PATHS:
        for key in keys:
            try:
                value = OmegaConf.select(cfg, key, throw_on_missing=True)
            except OmegaConfBaseException:
                continue  # a path that cannot be resolved is reported by the checks that need it
            if value is not None and inside_shipped_runs(str(value)):
                problems.append(shipped_runs_refusal(key, value))
                break
    return problems


def unwritable_reason(folder: Path) -> str | None:
    """Why nothing can be written under ``folder`` (None when it can): its nearest existing ancestor is a
    file, or a probe file cannot be created there (this tests the permission as the file system sees it,
    also for root)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".lra-snn-write-probe-")
    except OSError as error:
        return f"cannot write in {existing} ({error.strerror})"
    os.close(handle)
    os.unlink(probe)
    return None


CELL_FOLDERS = {"paths.results_dir": ("paths.result_file", ".."), "paths.output_dir": ("paths.run_dir", "checkpoints")}


def _cell_folder(cfg: DictConfig, key: str, below: str) -> Path | None:
    """The folder of the cell under a written root: the result file's folder, or the run's checkpoints."""
    try:
        value = OmegaConf.select(cfg, key, throw_on_missing=True)
    except OmegaConfBaseException:
        return None
    if value is None:
        return None
    return Path(str(value)).parent if below == ".." else Path(str(value)) / below


def _unwritable_problems(cfg: DictConfig) -> list[str]:
    """A folder the run writes to that it could not write to, or a file standing where the cell's result or
    checkpoint folder belongs: found now, not after the training."""
    problems = []
    for root, (key, below) in CELL_FOLDERS.items():
        try:
            value = OmegaConf.select(cfg, root, throw_on_missing=True)
        except OmegaConfBaseException:
            continue
        reason = None if value is None else unwritable_reason(Path(str(value)))
        if reason is not None:
            problems.append(f"{root}={value}: {reason}; choose a folder you can write to")
            continue
        folder = _cell_folder(cfg, key, below)
        reason = None if folder is None else unwritable_reason(folder)
        if reason is not None:
            problems.append(f"{key}: {reason}, where the run needs the folder {folder}; move it away and run again")
    return problems


def validate_config(cfg: DictConfig, choices: Mapping[str, str | None] | None = None) -> None:
    """Raise ``ConfigError`` listing every key of ``cfg`` whose value breaks its rule, every ordered pair
    out of order, a run without an end, a recipe that is not the cell's, and a
    release (``data.source=release``) that is not unpacked where ``data.release_dir`` says, and a folder the
    run writes to inside the shipped runs (``results/reference-runs``, read-only) or where it cannot write.

    ``choices``: the config group choices (``{"recipe": "full/s4/listops", "data": "listops", ...}``);
    by default those of the current Hydra run, if any."""
    problems, valid = _value_problems(cfg)
    problems += _unknown_options(cfg)
    problems += _relation_problems(cfg, valid)
    problems += _recipe_problems(hydra_choices() if choices is None else choices)
    problems += _release_problems(cfg)
    problems += _shipped_runs_problems(cfg)
    problems += _unwritable_problems(cfg)
    if problems:
        raise ConfigError(problems)
