"""The recipe audit of docs/recipes.md keeps step with the configs: for every recipe under
conf/experiment/**, each audited key's "ours" value equals the composed full-size config, every row
names a source (or says "assumed"), and every recipe has a row for each hyperparameter audited."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from omegaconf import OmegaConf

from lra_snn.config import PROJECT_ROOT, compose_train

DOC = PROJECT_ROOT / "docs" / "recipes.md"
CONF = PROJECT_ROOT / "conf"
HEADER = ["recipe", "key", "ours", "published", "source"]
EXPERIMENTS = sorted(
    p.relative_to(CONF / "experiment").with_suffix("").as_posix() for p in (CONF / "experiment").rglob("*.yaml")
)
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
    """recipe -> key -> (ours, published, source) from every table of docs/recipes.md with the audit header."""
    rows: dict[str, dict[str, tuple[str, str, str]]] = defaultdict(dict)
    in_table = False
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.startswith("|"):
            in_table = False
            continue
        cells = split_row(line)
        if cells == HEADER:
            in_table = True
        elif in_table and not set("".join(cells)) <= set("-: "):
            assert len(cells) == len(HEADER), f"docs/recipes.md:{number}: expected {len(HEADER)} cells: {line}"
            recipe, key, ours, published, source = cells
            assert key not in rows[recipe], f"docs/recipes.md:{number}: {recipe} {key} is listed twice"
            rows[recipe][key] = (ours, published, source)
    return rows


def parse_ours(text: str) -> object:
    """A cell of the "ours" column: JSON (numbers, true/false/null, lists), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def required_keys(cfg) -> set[str]:
    """The keys every recipe of this kind must audit, plus each option of its spiking neuron."""
    keys = set(LM_KEYS if cfg.task_name == "wikitext103" else LRA_KEYS)
    if "d_state" in cfg.model.encoder.layer:
        keys |= {"model.encoder.layer.d_state"} | (set() if cfg.task_name == "wikitext103" else set(S4D_LAYER_KEYS))
    neuron = OmegaConf.select(cfg, "model.encoder.layer.neuron")
    if neuron is not None:
        keys |= {f"model.encoder.layer.neuron.{k}" for k in neuron if k not in NOT_AUDITED}
    if OmegaConf.select(cfg, "model.encoder.layer.mixer") is not None:
        keys.add("model.encoder.layer.mixer")
    return keys


ROWS = audit_rows()


def test_the_audit_lists_exactly_the_recipes_under_conf_experiment():
    assert sorted(ROWS) == EXPERIMENTS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_audit_rows_match_the_composed_recipe(experiment):
    cfg = compose_train([f"experiment={experiment}", "profile=full"])
    rows = ROWS.get(experiment, {})
    missing = sorted(required_keys(cfg) - set(rows))
    assert not missing, f"docs/recipes.md has no audit row for {experiment}: {missing}"
    for key, (ours, published, source) in rows.items():
        value = OmegaConf.select(cfg, key, default=MISSING)
        assert value is not MISSING, f"docs/recipes.md audits {experiment} {key}, which its config does not have"
        if OmegaConf.is_config(value):
            value = OmegaConf.to_object(value)
        expected = parse_ours(ours)
        assert value == expected and type(value) is type(expected), (
            f"{experiment} {key}: the config says {value!r}, docs/recipes.md says {ours!r}; "
            "update the audit row with the config"
        )
        assert published, f"{experiment} {key}: give the published value, or '-' when none is published"
        assert source, f"{experiment} {key}: give the source (paper table, repo config file) or 'assumed'"
