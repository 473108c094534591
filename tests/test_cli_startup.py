"""``lra-train`` answers before importing torch or Lightning: help, config printing, config info, shell
completion and an override Hydra refuses never load them (so they take about as long as a bare Hydra
application; ``benchmarks/startup.py`` times both). The help lists the project's choices."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lra_snn.config import PROJECT_ROOT
from lra_snn.config.choices import group_choices, group_options
from lra_snn.config.tasks import TASKS
from lra_snn.config.zoo import models

HEAVY = ("torch", "lightning", "pytorch_lightning", "torchmetrics", "datasets", "numba", "matplotlib")

PROBE = """
import json, sys
sys.argv = ["lra-train", *json.loads(sys.argv[1])]
from lra_snn.cli.train import cli
try:
    cli()
except SystemExit as stop:
    code = stop.code
else:
    code = 0
print("HEAVY=" + json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
print("EXIT=" + json.dumps(code if isinstance(code, int) or code is None else str(code)))
"""


def probe(args: list[str], env: dict[str, str] | None = None) -> tuple[list[str], object, str]:
    """The heavy modules loaded by ``lra-train <args>``, its exit status and its output."""
    import os

    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), json.dumps(args)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stdout.splitlines()
    heavy = json.loads(next(line for line in lines if line.startswith("HEAVY="))[6:])
    code = json.loads(next(line for line in lines if line.startswith("EXIT="))[5:])
    return heavy, code, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "env", "expected_code"),
    [
        (["--help"], None, 0),
        (["model=s4d", "--cfg", "job"], None, 0),
        (["--info", "defaults"], None, 0),
        (["modl=s4d"], None, 1),  # Hydra refuses the unknown key
        (["model=no_such_model"], None, 1),  # and the unknown option
        (["-sc", "query=bash"], {"COMP_LINE": "lra-train model=s", "COMP_POINT": "17"}, 0),
    ],
)
def test_answers_without_importing_torch_or_lightning(args, env, expected_code):
    heavy, code, output = probe(args, env)
    assert heavy == [], f"lra-train {' '.join(args)} imported {heavy}:\n{output}"
    assert code == expected_code, output


def test_the_refused_override_still_names_the_closest_key():
    _heavy, _code, output = probe(["modl=s4d"])
    assert "no config key 'modl'; did you mean 'model'?" in output


def test_completion_lists_the_zoo_models_that_match():
    _heavy, _code, output = probe(["-sc", "query=bash"], {"COMP_LINE": "lra-train model=spik", "COMP_POINT": "20"})
    assert output.split("HEAVY=")[0].split() == ["model=spike_ssm", "model=spikingssm", "model=spikingssm_lif"]


def test_help_lists_the_choices_and_hides_internal_groups():
    _heavy, _code, output = probe(["--help"])
    assert "lra-train model=prf data=listops" in output
    for group in ("data_profile", "recipe=", "family=", "$APP_CONFIG_GROUPS"):
        assert group not in output
    listed = output.split("model=", 1)[1].split("data=", 1)[0]
    assert [name.strip(" ,\n") for name in listed.replace("\n", ",").split(",") if name.strip(" ,")] == list(models())
    assert f"data=           {', '.join(sorted(TASKS))}\n" in output


def test_group_options_read_the_config_folders():
    assert group_options("profile") == ("full", "mini", "tiny")
    assert group_options("model/block") == ("s4d", "sd_tcm")
    assert group_options("model") == models()
    with pytest.raises(KeyError, match=r"no config group 'nonsense'.*the groups are .*model/neuron"):
        group_options("nonsense")


def test_group_choices_wrap_under_the_first_option():
    text = group_choices("model", indent=18)
    lines = text.split("\n")
    assert len(lines) >= 2
    assert all(len(line) <= 100 for line in lines) and len(lines[0]) > 72  # filled to the help's 100 columns
    assert all(line.startswith(" " * 18) and not line.startswith(" " * 19) for line in lines[1:])
    assert text.replace("\n" + " " * 18, " ").split(", ") == list(models())


def test_a_refused_run_s_folder_is_removed_up_to_the_outputs_folder(tmp_path):
    from lra_snn.cli.train import discard_refused_run_folder

    outputs = tmp_path / "outputs"
    run_dir = outputs / "runs" / "mini" / "listops" / "s4d" / "abc" / "seed_1"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "train.log").write_text("refused\n")
    kept = outputs / "runs" / "mini" / "text"  # another cell's folder: not emptied, so kept
    kept.mkdir(parents=True)
    discard_refused_run_folder(run_dir, outputs)
    assert sorted(str(p.relative_to(outputs)) for p in outputs.rglob("*")) == ["runs", "runs/mini", "runs/mini/text"]


def test_a_folder_with_a_real_run_in_it_is_left_alone(tmp_path):
    from lra_snn.cli.train import discard_refused_run_folder

    run_dir = tmp_path / "outputs" / "cell"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    discard_refused_run_folder(run_dir, tmp_path / "outputs")
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "checkpoints"]


def test_a_choice_whose_extra_is_missing_is_named_with_its_install():
    from lra_snn.config.extras import missing_extras

    nothing = lambda module: False  # noqa: E731
    assert missing_extras(["model=s4d", "logger=[csv,wandb]", "hydra/launcher=parallel"], nothing) == [
        "logger=wandb needs wandb: pip install 'lra-snn[wandb]'",
        "hydra/launcher=parallel needs hydra_plugins.hydra_joblib_launcher: pip install 'lra-snn[launchers]'",
    ]
    assert missing_extras(["hydra/launcher=slurm", "logger=csv", "seed=1,2"], nothing) == [
        "hydra/launcher=slurm needs hydra_plugins.hydra_submitit_launcher: pip install 'lra-snn[slurm]'"
    ]
    assert missing_extras(["logger=wandb", "hydra/launcher=parallel"]) == []  # installed here (the dev extra)


def test_the_command_line_stops_on_a_missing_extra_before_hydra_starts(monkeypatch, capsys):
    import lra_snn.cli.train as train

    monkeypatch.setattr(train, "missing_extras", lambda argv: ["logger=wandb needs wandb: pip install 'x'"])
    monkeypatch.setattr("sys.argv", ["lra-train", "logger=wandb"])
    with pytest.raises(SystemExit) as stop:
        train.cli()
    assert stop.value.code == 2
    assert capsys.readouterr().err == "lra-train: logger=wandb needs wandb: pip install 'x'\n"


def test_a_neuron_without_a_model_config_is_a_model_choice_and_names_never_break(tmp_path):
    conf = tmp_path / "conf"
    for folder in ("model/neuron", "model/block", "other"):
        (conf / folder).mkdir(parents=True)
    (conf / "model" / "s4d.yaml").write_text("name: s4d\n")
    (conf / "model" / "neuron" / "new-neuron.yaml").write_text("name: new-neuron\n")
    assert group_options("model", conf) == ("s4d", "new-neuron_ssm")
    for index in range(12):
        (conf / "other" / f"a-long-hyphenated-option-name-{index:02d}.yaml").write_text("{}\n")
    lines = group_choices("other", indent=18, conf_dir=conf).split("\n")
    assert all(line.rstrip(",").split(", ")[-1].startswith(("a-long", " " * 18)) for line in lines)
    names = [name.strip() for line in lines for name in line.split(",") if name.strip()]
    assert names == [f"a-long-hyphenated-option-name-{index:02d}" for index in range(12)]  # none cut at a hyphen


def test_a_module_whose_package_is_missing_is_not_installed():
    from lra_snn.config.extras import _installed

    assert _installed("json") and not _installed("no_such_package_xyz")
    assert not _installed("no_such_package_xyz.plugin")  # find_spec raises for a missing parent


def test_extras_are_read_from_every_override_whatever_comes_before():
    from lra_snn.config.extras import missing_extras

    nothing = lambda module: False  # noqa: E731
    assert missing_extras(["--multirun", "+logger=wandb"], nothing) == [
        "logger=wandb needs wandb: pip install 'lra-snn[wandb]'"
    ]
