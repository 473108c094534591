"""The model zoo as the configs define it: every model, its recipe family, and the zoo models made for new neurons.

A model is a config under ``conf/model/`` (``model=<name>``), whose defaults name its recipe family
(``- override /family@_global_.family: <family>``, inherited from a model it builds on) and, where its
block hosts one, its neuron (``- neuron: <name>``). A neuron config under ``conf/model/neuron/`` that no
model config names becomes the zoo model ``<neuron>_ssm``: the S4D model with that neuron in place of
GELU, of the spiking-S4D family, registered with Hydra (``register_neuron_models``) so that
``model=<neuron>_ssm`` composes like a file. Nothing here imports torch: ``make`` lists the zoo with
``python -m lra_snn.cli.zoo``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from lra_snn.config.locations import CONF_DIR

FAMILY_OVERRIDE = "override /family@_global_.family"
NO_FAMILY = "none"
NEURON_MODEL_BASE = "s4d"  # the model a new neuron's zoo model builds on
NEURON_MODEL_FAMILY = "spiking_s4d"
NEURON_MODEL_SUFFIX = "_ssm"


def _defaults(path: Path) -> list[Any]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(raw.get("defaults", [])) if isinstance(raw, dict) else []


def _entries(defaults: list[Any]) -> dict[str, str]:
    """The ``key: option`` entries of a defaults list (plain names, such as a parent model, are left out);
    ``override neuron: x`` (a model replacing the neuron of the model it builds on) reads as ``neuron: x``."""
    entries = {str(k): str(v) for entry in defaults if isinstance(entry, dict) for k, v in entry.items()}
    if "override neuron" in entries:
        entries["neuron"] = entries.pop("override neuron")
    return entries


def model_files(conf_dir: Path = CONF_DIR) -> dict[str, Path]:
    """Model name -> its config file under ``conf/model/`` (sorted by name)."""
    return {path.stem: path for path in sorted((conf_dir / "model").glob("*.yaml"))}


def neuron_names(conf_dir: Path = CONF_DIR) -> tuple[str, ...]:
    """The neurons with a config under ``conf/model/neuron/`` (sorted)."""
    return tuple(path.stem for path in sorted((conf_dir / "model" / "neuron").glob("*.yaml")))


def neuron_models(conf_dir: Path = CONF_DIR) -> dict[str, str]:
    """Zoo model name -> neuron, for every neuron config that no model config names."""
    named = {_entries(_defaults(path)).get("neuron") for path in model_files(conf_dir).values()}
    return {f"{neuron}{NEURON_MODEL_SUFFIX}": neuron for neuron in neuron_names(conf_dir) if neuron not in named}


def models(conf_dir: Path = CONF_DIR) -> tuple[str, ...]:
    """Every ``model=`` option: the model configs, then the zoo models made for new neurons."""
    files = model_files(conf_dir)
    return (*files, *(name for name in neuron_models(conf_dir) if name not in files))


def family(model: str, conf_dir: Path = CONF_DIR) -> str:
    """The recipe family of ``model``: the one its config names, else that of the model it builds on."""
    if model in neuron_models(conf_dir):
        return NEURON_MODEL_FAMILY
    files = model_files(conf_dir)
    if model not in files:
        raise KeyError(f"no model {model!r} under {conf_dir / 'model'}; the models are {', '.join(models(conf_dir))}")
    defaults = _defaults(files[model])
    own = _entries(defaults).get(FAMILY_OVERRIDE)
    if own is not None:
        return own
    parents = [entry for entry in defaults if isinstance(entry, str) and entry in files and entry != model]
    return family(parents[0], conf_dir) if parents else NO_FAMILY


def neuron(model: str, conf_dir: Path = CONF_DIR) -> str | None:
    """The neuron config ``model`` names (or the model it builds on names), None for a model without one."""
    made = neuron_models(conf_dir)
    if model in made:
        return made[model]
    files = model_files(conf_dir)
    if model not in files:
        raise KeyError(f"no model {model!r} under {conf_dir / 'model'}; the models are {', '.join(models(conf_dir))}")
    defaults = _defaults(files[model])
    own = _entries(defaults).get("neuron")
    if own is not None:
        return own
    parents = [entry for entry in defaults if isinstance(entry, str) and entry in files and entry != model]
    return neuron(parents[0], conf_dir) if parents else None


def neuron_model_node(name: str, neuron: str) -> dict[str, Any]:
    """The config of the zoo model ``name`` made for ``neuron``, as a config file would say it."""
    return {
        "defaults": [NEURON_MODEL_BASE, {"neuron": neuron}, {FAMILY_OVERRIDE: NEURON_MODEL_FAMILY}, "_self_"],
        "name": name,
    }


@cache
def register_neuron_models(conf_dir: Path = CONF_DIR) -> tuple[str, ...]:
    """Register the zoo models made for new neurons with Hydra's ConfigStore (once); return their names."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    made = neuron_models(conf_dir)
    for name, neuron in made.items():
        store.store(group="model", name=name, node=neuron_model_node(name, neuron), provider="lra_snn")
    return tuple(made)
