"""The zoo as the configs define it (lra_snn.config.zoo): models, their recipe families and neurons, and the zoo
model made for a neuron no model config names; the command that lists them for make."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lra_snn.config import PROJECT_ROOT
from lra_snn.config.tasks import TASKS
from lra_snn.config.zoo import family, models, neuron, neuron_model_node, neuron_models

FAMILY = "override /family@_global_.family"
MODEL_FILES = {
    "base": f"defaults:\n  - block: s4d\n  - {FAMILY}: fam_a\n  - _self_\nname: base\n",
    "child": "defaults:\n  - base\n  - neuron: n1\n  - _self_\nname: child\n",
    "other": f"defaults:\n  - base\n  - neuron: n2\n  - {FAMILY}: fam_b\n  - _self_\nname: other\n",
    "plain": "name: plain\n",
    "grandchild": "defaults:\n  - child\n  - _self_\nname: grandchild\n",
    "late": "defaults:\n  - _self_\n  - base\nname: late\n",  # _self_ first: still built on base
    "listed": "- not\n- a mapping\n",  # a config that is not a mapping names nothing
    "swapped": "defaults:\n  - child\n  - override neuron: n2\n  - _self_\nname: swapped\n",
}


@pytest.fixture
def conf(tmp_path) -> Path:
    for name, text in MODEL_FILES.items():
        path = tmp_path / "model" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name in ("n1", "n2", "n3"):
        path = tmp_path / "model" / "neuron" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"name: {name}\n")
    return tmp_path


def test_models_are_the_model_files_then_the_zoo_models_of_unnamed_neurons(conf):
    assert models(conf) == ("base", "child", "grandchild", "late", "listed", "other", "plain", "swapped", "n3_ssm")
    assert neuron_models(conf) == {"n3_ssm": "n3"}


def test_a_family_is_named_by_the_model_or_inherited_from_the_model_it_builds_on(conf):
    families = ["fam_a", "fam_a", "fam_a", "fam_a", "none", "fam_b", "none", "fam_a", "spiking_s4d"]
    assert [family(name, conf) for name in models(conf)] == families


def test_a_neuron_is_named_by_the_model_or_inherited(conf):
    assert [neuron(name, conf) for name in models(conf)] == [None, "n1", "n1", None, None, "n2", None, "n2", "n3"]


def test_an_unknown_model_is_refused_naming_the_models(conf):
    names = "base, child, grandchild, late, listed, other, plain, swapped, n3_ssm"
    listed = f"no model 'nope' under {conf / 'model'}; the models are {names}"
    for look_up in (family, neuron):
        with pytest.raises(KeyError) as error:
            look_up("nope", conf)
        assert error.value.args == (listed,)


def test_the_zoo_model_of_a_new_neuron_is_the_s4d_model_with_it():
    assert neuron_model_node("n3_ssm", "n3") == {
        "defaults": ["s4d", {"neuron": "n3"}, {"override /family@_global_.family": "spiking_s4d"}, "_self_"],
        "name": "n3_ssm",
    }


def test_the_shipped_zoo():
    assert set(models()) == {
        "s4d", "prf", "spike_ssm", "psn_ssm", "masked_psn_ssm", "sliding_psn_ssm", "dsn_ssm", "lif_ssm",
        "binary_s4d", "binary_s4d_gsu", "spikingssm", "spikingssm_lif",
    }  # fmt: skip
    assert neuron("spikingssm") == "sdn" and neuron("spikingssm_lif") == "lif_hard"
    assert {model: family(model) for model in ("s4d", "binary_s4d", "lif_ssm", "spike_ssm", "prf")} == {
        "s4d": "s4",
        "binary_s4d": "s4",
        "lif_ssm": "spiking_s4d",
        "spike_ssm": "spiking_s4d",
        "prf": "prf",
    }


@pytest.mark.parametrize(("what", "expected"), [("models", ",".join(models())), ("tasks", ",".join(TASKS))])
def test_the_listing_for_make(what, expected):
    done = subprocess.run(
        [sys.executable, "-m", "lra_snn.cli.zoo", what], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout == expected + "\n"
