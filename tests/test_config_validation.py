"""Config validation (lra_snn/training/validate.py): every bad value is named, with its allowed range, before
anything is built; a recipe chosen by hand belongs to the cell's model family and task; every shipped config
passes."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from pathlib import Path

import lightning
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.fabric.connector import _PRECISION_INPUT_STR
from omegaconf import DictConfig, OmegaConf

from lra_snn.config import CONF_DIR, PROJECT_ROOT, register_with_hydra
from lra_snn.config.tasks import TASK_TABLE
from lra_snn.config.zoo import models
from lra_snn.data.errors import DataNotFoundError
from lra_snn.data.lra_release import FOLDERS
from lra_snn.neurons import NEURONS, neuron_class
from lra_snn.training.cell import run
from lra_snn.training.validate import NEURON, PRECISIONS, RULES, ConfigError, validate_config
from tests.conftest import isolated_overrides
from tests.fakes import write_lra_release

MODELS = models()
TASKS = TASK_TABLE.names
PROFILES = sorted(p.stem for p in (CONF_DIR / "profile").glob("*.yaml"))
RELEASE_TASKS = tuple(FOLDERS)  # the tasks whose data the LRA release holds
FIXED_LENGTH = ("psn_ssm", "masked_psn_ssm")  # T x T weights: not for Path-X's length or language models
FULL_CELLS = [(m, t) for m in MODELS for t in TASKS if not (m in FIXED_LENGTH and t in ("pathx", "wikitext103"))]


def compose_with_choices(tmp: Path, *overrides: str) -> tuple[DictConfig, dict[str, str | None]]:
    """The train config for ``overrides`` (isolated under ``tmp``) and Hydra's group choices for it."""
    register_with_hydra()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*isolated_overrides(tmp), *overrides], return_hydra_config=True)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    assert isinstance(choices, dict)
    return cfg, choices


def problems_of(tmp: Path, *overrides: str) -> list[str]:
    """The lines of the ConfigError that validation raises for ``overrides`` (empty: the config is valid)."""
    cfg, choices = compose_with_choices(tmp, *overrides)
    try:
        validate_config(cfg, choices)
    except ConfigError as error:
        return error.problems
    return []


BAD_VALUES = [
    (("trainer.max_epochs=abc",), "trainer.max_epochs='abc': expected an integer >= 1"),
    (("trainer.max_epochs=0",), "trainer.max_epochs=0: expected an integer >= 1"),
    (
        ("trainer.max_epochs=-1",),
        "trainer.max_epochs=-1 with trainer.max_steps unset: expected an integer >= 1 "
        "for trainer.max_epochs, or trainer.max_steps set to an integer >= 1",
    ),
    (("trainer.max_epochs=null", "++trainer.max_steps=0"), "trainer.max_steps=0: expected an integer >= 1 or -1"),
    (
        ("trainer.devices=0",),
        "trainer.devices=0: expected an integer >= 1 or one of -1, 'auto' or a list of values, each an integer >= 0",
    ),
    (
        ("trainer.precision=16",),
        "trainer.precision=16: expected one of '64-true', '32-true', '16-true', 'bf16-true', '16-mixed', 'bf16-mixed'",
    ),
    (("++trainer.accumulate_grad_batches=0",), "trainer.accumulate_grad_batches=0: expected an integer >= 1"),
    (("trainer.gradient_clip_val=-0.5",), "trainer.gradient_clip_val=-0.5: expected a number >= 0 or null"),
    (
        ("++trainer.limit_train_batches=0",),
        "trainer.limit_train_batches=0: expected an integer >= 1 or a number in (0, 1]",
    ),
    (("model.encoder.d_model=-8",), "model.encoder.d_model=-8: expected an integer >= 1"),
    (("model.encoder.n_layers=0",), "model.encoder.n_layers=0: expected an integer >= 1"),
    (("model.encoder.n_layers=2.5",), "model.encoder.n_layers=2.5: expected an integer >= 1"),
    (("model.encoder.dropout=1.0",), "model.encoder.dropout=1.0: expected a number in [0, 1)"),
    (("model.encoder.prenorm=yes",), "model.encoder.prenorm='yes': expected true or false"),
    (("model.encoder.layer.d_state=3",), "model.encoder.layer.d_state=3: expected an even integer >= 2"),
    (
        ("model.encoder.layer.dt_min=0.5",),
        "model.encoder.layer.dt_min=0.5 exceeds model.encoder.layer.dt_max=0.1: lower dt_min or raise dt_max",
    ),
    (
        ("model=lif_ssm", "model.encoder.layer.neuron.tau=0.5"),
        "model.encoder.layer.neuron.tau=0.5: expected a number >= 1",
    ),
    (
        ("model=lif_ssm", "model.encoder.layer.neuron.backend=cuda"),
        "model.encoder.layer.neuron.backend='cuda': expected one of null, 'torch', 'triton'",
    ),
    (
        ("model=dsn_ssm", "model.encoder.layer.neuron.kernel_size=0"),
        "model.encoder.layer.neuron.kernel_size=0: expected an integer >= 1",
    ),
    (
        ("model=dsn_ssm", "model.encoder.layer.neuron.n_levels=-2"),
        "model.encoder.layer.neuron.n_levels=-2: expected an integer >= 1",
    ),
    (
        ("model=sliding_psn_ssm", "model.encoder.layer.neuron.k=0"),
        "model.encoder.layer.neuron.k=0: expected an integer >= 1",
    ),
    (
        ("model=spike_ssm", "model.encoder.layer.neuron.train_max_iters=0"),
        "model.encoder.layer.neuron.train_max_iters=0: expected an integer >= 1 or null",
    ),
    (
        ("model=psn_ssm", "data.max_length=5000"),
        "model.encoder.layer.neuron.T=5000 (from ${oc.select:data.max_length,1024}) exceeds "
        "model.encoder.layer.neuron.max_T=4096: lower T or raise max_T",
    ),
    (
        ("model=prf", "model.encoder.layer.neuron.delta_min=0"),
        "model.encoder.layer.neuron.delta_min=0: expected a number > 0",
    ),
    (("task.lr=0",), "task.lr=0: expected a number > 0"),
    (("task.weight_decay=-0.1",), "task.weight_decay=-0.1: expected a number >= 0"),
    (("task.warmup_steps=-1",), "task.warmup_steps=-1: expected an integer >= 0"),
    (
        ("task.warmup_steps=200", "task.total_steps=100"),
        "task.warmup_steps=200 exceeds task.total_steps=100: lower warmup_steps or raise total_steps",
    ),
    (("task.betas=[0.9,1.0]",), "task.betas=[0.9, 1.0]: expected a list of 2 values, each a number in [0, 1)"),
    (("task.betas=[0.9]",), "task.betas=[0.9]: expected a list of 2 values, each a number in [0, 1)"),
    (
        ("data=wikitext103", "task.cutoffs=[200,100]"),
        "task.cutoffs=[200, 100]: expected a list of increasing values, each an integer >= 1",
    ),
    (
        ("data=wikitext103", "task.softmax_dropout=1.5"),
        "task.softmax_dropout=1.5: expected a number in [0, 1)",
    ),
    (
        ("data=wikitext103", "model.encoder.embedding.dropout=-0.1"),
        "model.encoder.embedding.dropout=-0.1: expected a number in [0, 1)",
    ),
    (("data=wikitext103", "task.tie_weights=1"), "task.tie_weights=1: expected true or false"),
    (("data=wikitext103", "task.init_scale=0"), "task.init_scale=0: expected a number > 0"),
    (("data.n_train=-5",), "data.n_train=-5: expected an integer >= 1 or null"),
    (("data.n_val=0",), "data.n_val=0: expected an integer >= 1 or null"),
    (("data.n_test=0",), "data.n_test=0: expected an integer >= 1 or null"),
    (("data.batch_size=0",), "data.batch_size=0: expected an integer >= 1"),
    (("data.max_length=0",), "data.max_length=0: expected an integer >= 1"),
    (("data=text", "data.max_length=-1"), "data.max_length=-1: expected an integer >= 1"),
    (("data=wikitext103", "data.global_batch=0"), "data.global_batch=0: expected an integer >= 1"),
    (("seed=1.5",), "seed=1.5: expected an integer in [0, 4294967295]"),
    (("seed=-1",), "seed=-1: expected an integer in [0, 4294967295]"),
]


@pytest.mark.parametrize(("overrides", "line"), BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_a_bad_value_is_named_with_its_allowed_range(tmp_path, overrides, line):
    problems = problems_of(tmp_path, "profile=tiny", *overrides)
    assert any(problem.startswith(line) for problem in problems), problems


def test_every_bad_key_is_listed_in_one_error(tmp_path):
    cfg, choices = compose_with_choices(
        tmp_path,
        "profile=tiny",
        "trainer.max_epochs=abc",
        "model.encoder.d_model=-8",
        "data.n_train=-5",
        "task.warmup_steps=-1",
        "model.encoder.n_layers=0",
    )
    with pytest.raises(ConfigError) as error:
        validate_config(cfg, choices)
    keys = [problem.partition("=")[0] for problem in error.value.problems]
    assert keys == [
        "trainer.max_epochs",
        "model.encoder.d_model",
        "model.encoder.n_layers",
        "task.warmup_steps",
        "data.n_train",
    ]
    message = str(error.value)
    assert message.startswith("5 invalid config values; set each to an allowed value on the command line")
    assert all(problem in message for problem in error.value.problems)
    assert isinstance(error.value, ValueError)


def test_an_interpolated_value_names_the_key_it_comes_from(tmp_path):
    problems = problems_of(tmp_path, "profile=tiny", "model.encoder.dropout=1.5")
    assert problems == [
        "model.encoder.dropout=1.5: expected a number in [0, 1)",
        "model.encoder.layer.dropout=1.5 (from ${model.encoder.dropout}): expected a number in [0, 1)",
    ]


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ("recipe=full/s4/text", "data=listops"),
            "recipe=full/s4/text is not a recipe of this cell (model=s4d of family s4, data=listops: "
            "tiny/s4/listops): drop recipe=, or choose the model and data it was written for",
        ),
        (
            ("recipe=full/prf/listops", "model=lif_ssm"),
            "recipe=full/prf/listops is not a recipe of this cell (model=lif_ssm of family spiking_s4d, "
            "data=listops: tiny/spiking_s4d/listops): drop recipe=, or choose the model and data it was written for",
        ),
    ],
)
def test_a_recipe_of_another_family_or_task_is_refused_naming_both(tmp_path, overrides, line):
    assert line in problems_of(tmp_path, "profile=tiny", *overrides)


def test_the_cells_own_recipe_at_another_profile_or_with_other_values_is_accepted(tmp_path):
    assert problems_of(tmp_path, "recipe=full/s4/listops", "profile=tiny", "model.encoder.d_model=16") == []


@pytest.fixture(scope="module")
def lra_release(tmp_path_factory) -> Path:
    """A small unpacked LRA release, as `make data-lra` leaves it."""
    return write_lra_release(tmp_path_factory.mktemp("data") / "lra_release")


@pytest.mark.parametrize(("model", "task"), FULL_CELLS)
def test_every_full_profile_cell_validates(tmp_path, model, task, lra_release):
    release = [f"data.release_dir={lra_release}"] if task in RELEASE_TASKS else []
    assert problems_of(tmp_path, f"model={model}", f"data={task}", "profile=full", *release) == []


@pytest.mark.parametrize(("model", "task"), [(m, t) for m, t in FULL_CELLS if t in RELEASE_TASKS])
def test_full_recipes_read_the_release_and_refuse_to_run_without_it(tmp_path, model, task, lra_release):
    cell = (f"model={model}", f"data={task}", "profile=full")
    cfg, choices = compose_with_choices(tmp_path, *cell)
    assert cfg.profile_name == "full"
    assert cfg.data.get("source", "release") == "release"  # Retrieval has no other source
    assert Path(cfg.data.release_dir) == tmp_path / "data" / "lra_release"  # where `make data-lra` unpacks it
    with_release = compose_with_choices(tmp_path, *cell, f"data.release_dir={lra_release}")
    validate_config(*with_release)
    if task == "retrieval":  # no generator: the data module's error, recorded as no_data
        with pytest.raises(DataNotFoundError, match="make data-lra"):
            instantiate(cfg.data).prepare_data()
        return
    with pytest.raises(ConfigError) as error:
        validate_config(cfg, choices)
    (line,) = error.value.problems
    assert line.startswith(f"data.source='release' (data.release_dir='{tmp_path / 'data' / 'lra_release'}'): ")
    assert "`make data-lra`" in line and "data.source=generate" in line


@pytest.mark.parametrize("task", ["listops", "pathfinder", "pathx"])
def test_generated_data_at_full_size_is_taken_when_asked_for(tmp_path, task):
    assert problems_of(tmp_path, "model=s4d", f"data={task}", "profile=full", "data.source=generate") == []
    assert problems_of(tmp_path, f"data={task}", "profile=full", "data.source=generate") == []
    for profile in ("tiny", "mini"):
        cfg, _ = compose_with_choices(tmp_path, f"data={task}", f"profile={profile}")
        assert cfg.data.source == "generate", profile


def test_a_release_without_its_folder_is_named_per_task(tmp_path, lra_release):
    line = problems_of(tmp_path, "data=pathx", "profile=full", f"data.release_dir={lra_release / 'listops-1000'}")
    assert len(line) == 1 and "pathfinder128" in line[0] and "make data-lra" in line[0]
    assert problems_of(tmp_path, "data=listops", "profile=tiny", "data.source=release", "data.release_dir=null") == [
        "data.source='release' (data.release_dir=null): source='release' needs "
        "data.release_dir=<folder of the LRA release>"
    ]


# the PSN layer holds T x T weights; at the full WikiText-103 context (8,192) T exceeds its cap of 4,096
FULL_PSN_ON_WIKITEXT = "model.encoder.layer.neuron.T=8192 (from ${oc.select:data.max_length,1024}) exceeds"


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_task_validates_at_every_profile(tmp_path, model, task, profile, lra_release):
    release = [f"data.release_dir={lra_release}"] if task in RELEASE_TASKS else []
    problems = problems_of(tmp_path, f"model={model}", f"data={task}", f"profile={profile}", *release)
    if model in ("psn_ssm", "masked_psn_ssm") and task == "wikitext103" and profile == "full":
        assert len(problems) == 1 and problems[0].startswith(FULL_PSN_ON_WIKITEXT)
    else:
        assert problems == []


def test_every_rule_names_a_key_that_a_shipped_config_or_the_trainer_has(tmp_path):
    keys: set[str] = set()
    for model in MODELS:
        for task in TASKS:
            cfg, _ = compose_with_choices(tmp_path, f"model={model}", f"data={task}", "profile=tiny")
            keys |= set(flat_keys(OmegaConf.to_container(cfg, resolve=False)))
    trainer_arguments = inspect.signature(lightning.Trainer.__init__).parameters
    missing = [
        key
        for key in RULES
        if key not in keys and not (key.startswith("trainer.") and key.removeprefix("trainer.") in trainer_arguments)
    ]
    assert not missing, f"rules for keys no config has: {missing}"
    neuron_keys = [f"{NEURON}.{option}" for name in NEURONS for option in neuron_class(name).option_rules]
    assert not [key for key in neuron_keys if key not in keys]


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_every_neuron_declares_a_rule_for_each_option_of_its_constructor(name):
    cls = neuron_class(name)
    parameters = inspect.signature(cls).parameters.values()
    options = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY} - {"backend"}  # backend: the base class
    assert set(cls.option_rules) == options


def test_an_option_the_neuron_does_not_take_is_refused_naming_its_options(tmp_path):
    # the PRF family's recipe sets theta_max, which the LIF does not take
    problems = problems_of(tmp_path, "model=lif_ssm", "family=prf", "recipe=full/prf/listops", "profile=tiny")
    assert problems == [
        "model.encoder.layer.neuron.theta_max: not an option of neuron 'lif' (its options: tau, v_th, detach_reset, "
        "surrogate, backend); drop it"
    ]


# (model, option=value, the start of the line that refuses it): each neuron's own rule, under its config key
NEURON_OPTION_VALUES = [
    ("lif_ssm", "tau=0.5", "tau=0.5: expected a number >= 1"),
    ("spike_ssm", "solver=guess", "solver='guess': expected one of"),
    ("dsn_ssm", "binary=1", "binary=1: expected true or false"),
    ("binary_s4d", "surrogate=relu", "surrogate='relu': expected one of"),
]


@pytest.mark.parametrize(("model", "option", "line"), NEURON_OPTION_VALUES)
def test_the_neuron_s_own_rules_check_its_options(tmp_path, model, option, line):
    (problem,) = problems_of(tmp_path, f"model={model}", f"{NEURON}.{option}", "profile=tiny")
    assert problem.startswith(f"{NEURON}.{line}")


def flat_keys(node: object, prefix: str = "") -> list[str]:
    """Every dotted key path to a leaf of a plain container config."""
    if not isinstance(node, dict):
        return [prefix.rstrip(".")]
    return [path for key, value in node.items() for path in flat_keys(value, f"{prefix}{key}.")]


def test_the_precisions_are_lightnings_names():
    assert set(PRECISIONS) <= set(typing.get_args(_PRECISION_INPUT_STR))


@pytest.mark.parametrize("bad", ["trainer.max_epochs=0", "data.n_train=-5", "model.encoder.n_layers=0"])
def test_run_refuses_a_bad_config_before_it_builds_or_records_anything(compose_train, tmp_path, bad):
    cfg = compose_train("profile=tiny", bad)
    with pytest.raises(ConfigError, match=bad.partition("=")[0]):
        run(cfg)
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("overrides", "lines"),
    [
        (
            ["trainer.max_epochs=abc", "data.n_train=-5"],
            [
                "2 invalid config values",
                "trainer.max_epochs='abc': expected an integer >= 1",
                "data.n_train=-5: expected an integer >= 1 or null",
            ],
        ),
        (
            ["recipe=full/s4/listops", "data=text"],
            ["recipe=full/s4/listops is not a recipe of this cell (model=s4d of family s4, data=text"],
        ),
    ],
)
def test_the_command_line_names_the_bad_values_and_exits_without_a_traceback(
    tmp_path, train_overrides, overrides, lines
):
    done = subprocess.run(
        [sys.executable, "-m", "lra_snn.train", "profile=tiny", *overrides, *train_overrides],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert all(line in done.stderr for line in lines), done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()
    assert list((tmp_path / "outputs").iterdir()) == []  # Hydra's run folder (.hydra/, train.log) removed


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("paths.results_dir={shipped}", "paths.results_dir"),
        ("paths.results_dir={shipped}/../reference-runs/mini", "paths.results_dir"),
        ("paths.output_dir={shipped}/x", "paths.output_dir"),
        ("paths.result_file={shipped}/mine/result.json", "paths.result_file"),
        ("paths.results_dir={link}", "paths.results_dir"),
    ],
)
def test_a_run_never_writes_into_the_shipped_runs(compose_train, tmp_path, override, key):
    from lra_snn.config.locations import SHIPPED_RUNS_DIR

    link = tmp_path / "shortcut"
    link.symlink_to(SHIPPED_RUNS_DIR)
    cfg = compose_train("profile=tiny", override.format(shipped=SHIPPED_RUNS_DIR, link=link))
    with pytest.raises(ConfigError) as refused:
        run(cfg)
    (line,) = [problem for problem in refused.value.problems if "shipped runs" in problem]
    assert line.startswith(f"{key}=") and "choose another folder" in line
    # following the advice (the default folder) runs
    assert not [p for p in validate_problems(compose_train("profile=tiny")) if "shipped runs" in p]


@pytest.mark.parametrize("key", ["hydra.run.dir", "hydra.sweep.dir"])
def test_hydra_s_own_folders_are_refused_inside_the_shipped_runs_before_hydra_makes_them(tmp_path, key):
    from lra_snn.config.locations import SHIPPED_RUNS_DIR

    before = sorted(p.relative_to(SHIPPED_RUNS_DIR) for p in SHIPPED_RUNS_DIR.rglob("*"))
    link = tmp_path / "shortcut"
    link.symlink_to(SHIPPED_RUNS_DIR)
    for value in (f"{SHIPPED_RUNS_DIR}/mine", "results/../results/reference-runs/mine", f"{link}/mine"):
        done = subprocess.run(
            [sys.executable, "-m", "lra_snn.train", "-m", "profile=tiny", f"{key}={value}"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2, done.stderr
        assert f"lra-train: {key}={value} lies inside" in done.stderr and "choose another folder" in done.stderr
    assert sorted(p.relative_to(SHIPPED_RUNS_DIR) for p in SHIPPED_RUNS_DIR.rglob("*")) == before


def test_hydra_folders_elsewhere_or_built_from_paths_are_left_to_hydra_and_the_run():
    from lra_snn.cli.train import shipped_runs_overrides
    from lra_snn.config.locations import SHIPPED_RUNS_DIR

    assert shipped_runs_overrides(["hydra.run.dir=/tmp/mine", "hydra.sweep.dir=${paths.output_dir}/x"]) == []
    assert shipped_runs_overrides([f"hydra.run.dir={SHIPPED_RUNS_DIR}/${{now:%H}}"]) == []  # left to the run
    assert shipped_runs_overrides(["X/../results/reference-runs", "hydra.run.dir=X/../results/reference-runs"]) == [
        f"hydra.run.dir=X/../results/reference-runs lies inside {SHIPPED_RUNS_DIR}, the shipped runs, which no "
        "command writes to; choose another folder (your runs go to results/local by default)"
    ]
    (quoted,) = shipped_runs_overrides(["+hydra.sweep.dir='results/reference-runs'", "seed=1"])
    assert quoted.startswith("hydra.sweep.dir='results/reference-runs' lies inside")


def validate_problems(cfg) -> list[str]:
    try:
        validate_config(cfg, choices={})
    except ConfigError as error:
        return list(error.problems)
    return []


@pytest.mark.parametrize(
    ("folder", "reason"),
    [("{file}/results", "{file} is a file, not a folder"), ("/sys/lra-snn-results", "cannot write in /sys")],
)
def test_a_results_folder_that_cannot_be_written_is_refused_before_training(compose_train, tmp_path, folder, reason):
    file = tmp_path / "a_file"
    file.write_text("")
    cfg = compose_train("profile=tiny", f"paths.results_dir={folder.format(file=file)}")
    with pytest.raises(ConfigError) as refused:
        run(cfg)
    (line,) = [problem for problem in refused.value.problems if problem.startswith("paths.results_dir=")]
    assert reason.format(file=file) in line and line.endswith("choose a folder you can write to")
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("*.ckpt"))


@pytest.mark.parametrize("where", ["run_dir", "checkpoints", "result_folder"])
def test_a_file_where_the_cell_s_folder_belongs_is_refused_before_training_and_moving_it_works(
    compose_train, tmp_path, where
):
    cfg = compose_train("profile=tiny", "seed=15")
    blocking = {
        "run_dir": Path(cfg.paths.run_dir),
        "checkpoints": Path(cfg.paths.run_dir) / "checkpoints",
        "result_folder": Path(cfg.paths.result_file).parent,
    }[where]
    blocking.parent.mkdir(parents=True, exist_ok=True)
    blocking.write_text("x")
    with pytest.raises(ConfigError) as refused:
        run(cfg)
    (line,) = [problem for problem in refused.value.problems if "move it away" in problem]
    assert f"{blocking} is a file, not a folder" in line
    assert not Path(cfg.paths.result_file).exists()
    blocking.rename(tmp_path / "moved")  # the advice
    assert run(cfg)["status"] == "completed"


def test_override_problems_checks_each_given_key_that_has_a_rule(compose_train):
    from omegaconf import OmegaConf

    from lra_snn.training.validate import override_problems

    cfg = compose_train("profile=tiny")
    OmegaConf.update(cfg, "data.n_test", 0)
    OmegaConf.update(cfg, "trainer.max_epochs", -1)  # broken too, but not among the keys given
    assert override_problems(cfg, ["paths.root_dir", "data.n_test"]) == [  # a key without a rule is passed over
        "data.n_test=0: expected an integer >= 1 or null"
    ]
