"""The recipe audit of docs/recipes.md keeps step with the configs: for every recipe under conf/recipe/full/
and every model of its family, each audited key's "ours" value equals the composed full-size config; every
row names a source (or says "assumed"); every recipe has a row for each key it sets and each hyperparameter
audited, and every model a row for each option of its neuron that no recipe sets."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from omegaconf import OmegaConf

from lra_snn.config import PROJECT_ROOT, compose_train
from lra_snn.config.tasks import TASKS
from lra_snn.config.zoo import family, models

DOC = PROJECT_ROOT / "docs" / "recipes.md"
RECIPES = PROJECT_ROOT / "conf" / "recipe" / "full"
HEADERS = (["recipe", "key", "ours", "published", "source"], ["model", "key", "ours", "published", "source"])
FAMILIES = sorted({family(model) for model in models()})
RECIPE_NAMES = sorted(f"{name}/{task}" for name in FAMILIES for task in TASKS)
LRA_KEYS = (
    "task.lr",
    "task.weight_decay",
    "task.dynamics_lr",
    "model.encoder.dropout",
    "data.batch_size",
    "trainer.max_epochs",
    "task.warmup_steps",
    "task.total_steps",
    "model.encoder.d_model",
    "model.encoder.n_layers",
    "model.encoder.norm",
    "model.encoder.prenorm",
    "model.encoder.layer.bidirectional",
)
S4D_LAYER_KEYS = ("model.encoder.layer.d_state", "model.encoder.layer.dt_min")
LM_KEYS = (
    "task.lr",
    "task.weight_decay",
    "task.dynamics_lr",
    "task.warmup_steps",
    "task.total_steps",
    "trainer.max_steps",
    "trainer.max_epochs",
    "model.encoder.dropout",
    "model.encoder.embedding.dropout",
    "task.softmax_dropout",
    "task.cutoffs",
    "task.div_value",
    "task.tie_weights",
    "task.tie_projections",
    "data.max_length",
    "data.global_batch",
    "model.encoder.d_model",
    "model.encoder.n_layers",
    "model.encoder.norm",
    "model.encoder.prenorm",
    "model.encoder.layer.bidirectional",
)
NOT_AUDITED = {"_target_", "_partial_", "name", "backend", "solver"}  # wiring, kernel and solver choice (same results)
MISSING = object()


def split_row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def audit_rows() -> dict[str, dict[str, tuple[str, str, str]]]:
    """recipe or model -> key -> (ours, published, source) from every audit table of docs/recipes.md."""
    rows: dict[str, dict[str, tuple[str, str, str]]] = defaultdict(dict)
    in_table = False
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.startswith("|"):
            in_table = False
            continue
        cells = split_row(line)
        if cells in HEADERS:
            in_table = True
        elif in_table and not set("".join(cells)) <= set("-: "):
            assert len(cells) == len(HEADERS[0]), f"docs/recipes.md:{number}: expected 5 cells: {line}"
            name, key, ours, published, source = cells
            assert key not in rows[name], f"docs/recipes.md:{number}: {name} {key} is listed twice"
            rows[name][key] = (ours, published, source)
    return rows


def parse_ours(text: str) -> object:
    """A cell of the "ours" column: JSON (numbers, true/false/null, lists), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def flat(tree: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    return {key: value for name, item in tree.items() for key, value in flat(item, f"{prefix}{name}.").items()}


def recipe_keys(name: str) -> set[str]:
    """The keys the recipe file ``name`` (``<family>/<task>``) sets."""
    return set(flat(OmegaConf.to_container(OmegaConf.load(RECIPES / f"{name}.yaml"))))


def required_recipe_keys(cfg, name: str) -> set[str]:
    """The keys every recipe of this kind must audit, and every key the recipe sets."""
    keys = set(LM_KEYS if cfg.task_name == "wikitext103" else LRA_KEYS)
    if "d_state" in cfg.model.encoder.layer:
        keys |= {"model.encoder.layer.d_state"} | (set() if cfg.task_name == "wikitext103" else set(S4D_LAYER_KEYS))
    return keys | recipe_keys(name)


def required_model_keys(cfg, name: str) -> set[str]:
    """Each option of the model's neuron that no recipe sets and the data does not give, and its block's mixer."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    neuron = OmegaConf.select(cfg, "model.encoder.layer.neuron")
    keys = set()
    if neuron is not None:
        options = raw["model"]["encoder"]["layer"]["neuron"]
        keys |= {
            f"model.encoder.layer.neuron.{key}"
            for key, value in options.items()
            if key not in NOT_AUDITED and not OmegaConf.is_interpolation(neuron, key)
        }
    if OmegaConf.select(cfg, "model.encoder.layer.mixer") is not None:
        keys.add("model.encoder.layer.mixer")
    return keys - recipe_keys(name)


def check_rows(cfg, where: str, rows: dict[str, tuple[str, str, str]]) -> None:
    for key, (ours, published, source) in rows.items():
        value = OmegaConf.select(cfg, key, default=MISSING)
        assert value is not MISSING, f"docs/recipes.md audits {where} {key}, which its config does not have"
        if OmegaConf.is_config(value):
            value = OmegaConf.to_object(value)
        expected = parse_ours(ours)
        assert value == expected and type(value) is type(expected), (
            f"{where} {key}: the config says {value!r}, docs/recipes.md says {ours!r}; "
            "update the audit row with the config"
        )
        assert published, f"{where} {key}: give the published value, or '-' when none is published"
        assert source, f"{where} {key}: give the source (paper table, repo config file) or 'assumed'"


ROWS = audit_rows()


def test_the_audit_lists_exactly_the_recipes_and_the_models_with_neuron_options():
    assert sorted(name for name in ROWS if "/" in name) == RECIPE_NAMES
    with_options = [
        model
        for model in models()
        if required_model_keys(compose_train([f"model={model}"]), f"{family(model)}/listops")
    ]
    assert sorted(name for name in ROWS if "/" not in name) == sorted(with_options)


@pytest.mark.parametrize("model", models())
@pytest.mark.parametrize("task", TASKS)
def test_audit_rows_match_the_composed_recipe_and_model(model, task):
    name = f"{family(model)}/{task}"
    cfg = compose_train([f"model={model}", f"data={task}", "profile=full"])
    recipe_rows, model_rows = ROWS.get(name, {}), ROWS.get(model, {})
    missing = sorted(required_recipe_keys(cfg, name) - set(recipe_rows))
    assert not missing, f"docs/recipes.md has no audit row for the recipe {name}: {missing}"
    missing = sorted(required_model_keys(cfg, name) - set(model_rows))
    assert not missing, f"docs/recipes.md has no audit row for the model {model}: {missing}"
    check_rows(cfg, name, recipe_rows)
    check_rows(cfg, model, {key: row for key, row in model_rows.items() if key not in recipe_keys(name)})
