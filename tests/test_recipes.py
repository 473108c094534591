"""The published recipes (conf/recipe/full/<family>/<task>.yaml): composing ``model=X data=T profile=full``
applies the recipe of X's family on T; every (model, task) pair that had a recipe of its own keeps its cell
hash; each recipe follows the published values it names; and every model runs a couple of steps of every
recipe on tiny data (result written; the test loss and accuracy are those of the evaluated checkpoint on the
test batch, recomputed here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.nn import functional as F

from lra_snn.config import PROJECT_ROOT, cell_hash
from lra_snn.config.tasks import ACCURACY, PERPLEXITY, TASK_TABLE, TASKS
from lra_snn.config.zoo import family, models
from lra_snn.training.build import build_task
from lra_snn.training.cell import run
from tests.fakes import fake_batches, write_cifar_archive, write_corpus, write_tsv_folder

RECIPES = PROJECT_ROOT / "conf" / "recipe" / "full"
MODELS = models()
LRA_TASKS = TASK_TABLE.ranked_by(ACCURACY)
LM_TASKS = TASK_TABLE.ranked_by(PERPLEXITY)
FIXED_LENGTH = ("psn_ssm", "masked_psn_ssm")  # T^2 weights: no Path-X; non-causal: no language model
UNRUNNABLE = {(model, "pathx") for model in FIXED_LENGTH} | {
    (model, task) for model in FIXED_LENGTH for task in LM_TASKS
}
TINY_RUN = [
    "profile=tiny",
    "model.encoder.d_model=16",
    "model.encoder.n_layers=1",
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=2",
    "++trainer.limit_val_batches=1",
    "++trainer.limit_test_batches=1",
]

# The cell hash of every (model, task) pair that had a recipe file of its own before recipes were written once
# per family (experiment=lra/<model>_<task>, lm/<model>_wt103): composing model=X data=T profile=full gives it.
# The spiking-S4D family's recipes then took SpikingSSMs' S4D (S4D-Lin, trainable_B per task), which changed its
# models' hashes deliberately: a recipe change updates this table in the same commit.
RECIPE_CELL_HASHES = {
    ("binary_s4d", "image"): "a83a635dcd",
    ("binary_s4d", "listops"): "f12e0cf14e",
    ("binary_s4d", "pathfinder"): "5bba976bb5",
    ("binary_s4d", "pathx"): "68796b6a49",
    ("binary_s4d", "retrieval"): "7354698e47",
    ("binary_s4d", "text"): "e7f7e7c74c",
    ("binary_s4d_gsu", "image"): "02a1a95c8d",
    ("binary_s4d_gsu", "listops"): "5e266eda77",
    ("binary_s4d_gsu", "pathfinder"): "4fe2e4f2a1",
    ("binary_s4d_gsu", "pathx"): "95979da94b",
    ("binary_s4d_gsu", "retrieval"): "6fdd1ed03a",
    ("binary_s4d_gsu", "text"): "85bf93f4be",
    ("dsn_ssm", "image"): "c28abeae9b",
    ("dsn_ssm", "listops"): "fc3827d0cb",
    ("dsn_ssm", "pathfinder"): "966cf8eea9",
    ("dsn_ssm", "pathx"): "096ff10e25",
    ("dsn_ssm", "retrieval"): "7f1c6d5386",
    ("dsn_ssm", "text"): "3bedb073cb",
    ("dsn_ssm", "wikitext103"): "6a01d264a2",
    ("lif_ssm", "image"): "9904a288a8",
    ("lif_ssm", "listops"): "c8536efacc",
    ("lif_ssm", "pathfinder"): "de3a749710",
    ("lif_ssm", "pathx"): "5954ff9823",
    ("lif_ssm", "retrieval"): "876e7e8113",
    ("lif_ssm", "text"): "c866a210f4",
    ("lif_ssm", "wikitext103"): "873796a45a",
    ("masked_psn_ssm", "image"): "9dc5a72a9c",
    ("masked_psn_ssm", "listops"): "714db8abd3",
    ("masked_psn_ssm", "pathfinder"): "c53699fe6a",
    ("masked_psn_ssm", "retrieval"): "4474e60361",
    ("masked_psn_ssm", "text"): "bba2431b8c",
    ("prf", "image"): "1d32a72d22",
    ("prf", "listops"): "a20df55282",
    ("prf", "pathfinder"): "a9ba41f2b2",
    ("prf", "pathx"): "7488cc2f81",
    ("prf", "retrieval"): "c6787255c4",
    ("prf", "text"): "693c701939",
    ("prf", "wikitext103"): "96f6fb0994",
    ("psn_ssm", "image"): "c87f78ff55",
    ("psn_ssm", "listops"): "ebc2ddf526",
    ("psn_ssm", "pathfinder"): "c36785a91b",
    ("psn_ssm", "retrieval"): "1ddc0f72aa",
    ("psn_ssm", "text"): "90a33bad87",
    ("s4d", "image"): "f635c4e7f6",
    ("s4d", "listops"): "88480b8b6d",
    ("s4d", "pathfinder"): "52f6043159",
    ("s4d", "pathx"): "830ff614ef",
    ("s4d", "retrieval"): "a737a853ac",
    ("s4d", "text"): "9d853ce077",
    ("s4d", "wikitext103"): "d889f17cc7",
    ("sliding_psn_ssm", "image"): "0df7b8a793",
    ("sliding_psn_ssm", "listops"): "e3d927a511",
    ("sliding_psn_ssm", "pathfinder"): "f8ffe2c14f",
    ("sliding_psn_ssm", "pathx"): "b8c81a8e3a",
    ("sliding_psn_ssm", "retrieval"): "d2aeed6bda",
    ("sliding_psn_ssm", "text"): "6208f70462",
    ("sliding_psn_ssm", "wikitext103"): "9412c2fb15",
    ("spike_ssm", "image"): "fcda0fe6e2",
    ("spike_ssm", "listops"): "3d107ac37f",
    ("spike_ssm", "pathfinder"): "6a4291998f",
    ("spike_ssm", "pathx"): "086ae762fc",
    ("spike_ssm", "retrieval"): "80a784556c",
    ("spike_ssm", "text"): "216369eda0",
    ("spike_ssm", "wikitext103"): "afab9eb335",
}


def recipe_file(model: str, task: str) -> Path:
    return RECIPES / family(model) / f"{task}.yaml"


def recipe(model: str, task: str):
    """The recipe file's own settings (without composing)."""
    return OmegaConf.load(recipe_file(model, task))


def full(compose_train, model: str, task: str, *overrides: str):
    return compose_train(f"model={model}", f"data={task}", "profile=full", *overrides)


def test_every_family_has_a_recipe_for_every_task_and_nothing_else():
    families = sorted({family(model) for model in MODELS})
    assert families == ["prf", "s4", "spiking_s4d"]
    found = sorted(p.relative_to(RECIPES).with_suffix("").as_posix() for p in RECIPES.rglob("*.yaml"))
    assert found == sorted(f"{name}/{task}" for name in families for task in TASKS)


@pytest.mark.parametrize(("model", "task"), sorted(RECIPE_CELL_HASHES))
def test_every_former_recipe_pair_keeps_its_cell_hash(compose_train, model, task):
    assert cell_hash(full(compose_train, model, task)) == RECIPE_CELL_HASHES[(model, task)]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("task", TASKS)
def test_the_full_profile_composes_the_family_recipe(compose_train, model, task):
    header = recipe_file(model, task).read_text().split("\n")[1]
    source = {"s4": "S4 repo", "prf": "Table 8", "spiking_s4d": "SpikingSSM"}[family(model)]
    source = "SpikingSSM" if task in LM_TASKS else source
    whole = recipe_file(model, task).read_text().split("\nmodel:")[0]
    assert source in whole, f"{recipe_file(model, task)}: the header comment should name the recipe ({source})"
    assert header.startswith("# The "), header
    cfg = full(compose_train, model, task)
    assert (cfg.model.name, cfg.task_name, cfg.profile_name) == (model, task, "full")
    own = OmegaConf.to_container(recipe(model, task))
    composed = OmegaConf.to_container(cfg, resolve=True)

    def same(expected, found, where):  # every value the recipe sets is the composed value
        if isinstance(expected, dict):
            for key, value in expected.items():
                same(value, found[key], f"{where}.{key}")
        else:
            assert found == expected, where

    same(own, composed, f"{model}/{task}")


def test_without_the_full_profile_no_recipe_applies(compose_train):
    mini = compose_train("model=prf", "data=text", "profile=mini")
    assert mini.task.lr != recipe("prf", "text").task.lr and mini.model.encoder.d_model == 64


# PRF paper, Table 8 (docs/recipes.md): depth, D, prenorm, dropout, lr, batch, epochs, wd; theta_max (docs/neurons.md)
PRF_TABLE_8 = {
    "listops": (8, 128, False, 0.0, 0.005, 50, 40, 0.05, math.pi / 6, False),
    "text": (6, 256, True, 0.0, 0.005, 16, 32, 0.05, math.pi / 8, False),
    "retrieval": (6, 256, True, 0.0, 0.005, 32, 20, 0.05, math.pi / 7, False),
    "image": (6, 512, False, 0.1, 0.005, 50, 200, 0.05, 8 * math.pi, True),
    "pathfinder": (6, 256, True, 0.05, 0.005, 64, 200, 0.03, 2 * math.pi / 0.6, True),
}
# S4 repo configs (docs/recipes.md): layers, d_model, d_state, prenorm, dropout, lr, wd, batch, epochs, warmup, total
S4_CONFIGS = {
    "listops": (6, 256, 4, False, 0.0, 0.01, 0.05, 32, 40, 12000, 120000),
    "text": (6, 256, 4, True, 0.0, 0.01, 0.05, 16, 32, 5000, 50000),
    "retrieval": (6, 256, 4, True, 0.0, 0.01, 0.05, 64, 20, 5000, 50000),
    "image": (6, 512, 64, False, 0.1, 0.01, 0.05, 50, 200, 18000, 180000),
    "pathfinder": (6, 256, 64, True, 0.0, 0.004, 0.05, 64, 200, 50000, 500000),
    "pathx": (6, 256, 64, True, 0.0, 0.001, 0.05, 16, 50, 50000, 500000),
}


@pytest.mark.parametrize("task", sorted(PRF_TABLE_8))
def test_the_prf_recipes_follow_table_8(task):
    cfg = recipe("prf", task)
    encoder = cfg.model.encoder
    found = (
        encoder.n_layers,
        encoder.d_model,
        encoder.prenorm,
        encoder.dropout,
        cfg.task.lr,
        cfg.data.batch_size,
        cfg.trainer.max_epochs,
        cfg.task.weight_decay,
        encoder.layer.neuron.theta_max,
        encoder.layer.bidirectional,
    )
    assert found == pytest.approx(PRF_TABLE_8[task])
    assert encoder.norm == "batch" and cfg.task.dynamics_lr == 0.001


@pytest.mark.parametrize("recipe_family", ["s4", "spiking_s4d"])
@pytest.mark.parametrize("task", sorted(S4_CONFIGS))
def test_the_s4d_block_recipes_follow_the_s4_rows(compose_train, recipe_family, task):
    model = next(m for m in MODELS if family(m) == recipe_family)
    cfg = full(compose_train, model, task)
    layers, d_model, d_state, prenorm, dropout, lr, wd, batch, epochs, warmup, total = S4_CONFIGS[task]
    norm, init, trainable_B = "batch", "inv", False
    if recipe_family == "spiking_s4d":
        # SpikingSSMs' configs: d_state 4 on ListOps and Text, 64 elsewhere; weight decay 0.01 (0.05 on Text);
        # LayerNorm on Image; S4D-Lin, with B trainable on ListOps, Text and Path-X
        d_state = 4 if task in ("listops", "text") else 64
        wd = 0.05 if task == "text" else 0.01
        norm = "layer" if task == "image" else "batch"
        init, trainable_B = "lin", task in ("listops", "text", "pathx")
    encoder = cfg.model.encoder
    found = (
        encoder.n_layers,
        encoder.d_model,
        encoder.layer.d_state,
        encoder.prenorm,
        encoder.dropout,
        cfg.task.lr,
        cfg.task.weight_decay,
        cfg.data.batch_size,
        cfg.trainer.max_epochs,
        cfg.task.warmup_steps,
        cfg.task.total_steps,
    )
    assert found == pytest.approx((layers, d_model, d_state, prenorm, dropout, lr, wd, batch, epochs, warmup, total))
    assert encoder.norm == norm
    assert encoder.layer.get("dt_min", 0.001) == (0.0001 if task == "pathx" else 0.001)
    assert (encoder.layer.init, encoder.layer.get("trainable_B", False)) == (init, trainable_B)


LM_RECIPE = {  # SpikingSSMs' wt103 config on the S4 WikiText-103 pipeline (docs/recipes.md)
    "model.encoder.d_model": 1024,
    "model.encoder.n_layers": 16,
    "model.encoder.norm": "layer",
    "model.encoder.prenorm": True,
    "model.encoder.dropout": 0.1,
    "model.encoder.embedding.dropout": 0.25,
    "model.encoder.layer.bidirectional": False,
    "task.cutoffs": [19997, 39997, 199997],
    "task.div_value": 4.0,
    "task.tie_weights": True,
    "task.tie_projections": True,
    "task.softmax_dropout": 0.25,
    "task.lr": 0.0005,
    "task.weight_decay": 0.1,
    "task.dynamics_lr": 0.001,
    "task.warmup_steps": 1000,
    "trainer.max_steps": 800000,
    "trainer.max_epochs": None,
    "data.max_length": 8192,
    "data.global_batch": 8,
}


@pytest.mark.parametrize("model", [m for m in MODELS if (m, LM_TASKS[0]) not in UNRUNNABLE])
def test_the_language_model_recipes_follow_the_wt103_recipe(compose_train, model):
    cfg = full(compose_train, model, LM_TASKS[0])
    found = {
        key: OmegaConf.to_object(value) if OmegaConf.is_config(value) else value
        for key in LM_RECIPE
        for value in [OmegaConf.select(cfg, key)]
    }
    assert found == LM_RECIPE
    if cfg.model.name != "prf":
        assert cfg.model.encoder.layer.d_state == 64


@pytest.fixture(scope="module")
def shared_data_dir(tmp_path_factory) -> Path:
    """One data folder for every run of this module, so generated data and caches are built once per task."""
    return tmp_path_factory.mktemp("recipe_data")


def _run_marks(task: str) -> list:
    return [] if task == "listops" else [pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_sources(shared_data_dir) -> dict[str, list[str]]:
    """Overrides pointing the tasks without generators or shared data at tiny files in their real formats."""
    sources = shared_data_dir / "sources"
    sources.mkdir()
    cifar = write_cifar_archive(sources / "cifar-10-python.tar.gz", fake_batches(n_per_batch=200))
    aan = write_tsv_folder(sources / "tsv_data", {"train": 32, "val": 16, "test": 16})
    wikitext = write_corpus(sources / "wikitext-103")
    return {
        "image": [f"data.archives=[{cifar}]"],
        "retrieval": [f"data.release_dir={aan}"],
        "wikitext103": [f"data.source_dir={wikitext}"],
    }


def first_test_batch(cfg, checkpoint: str | Path) -> tuple[float, float]:
    """Cross-entropy and accuracy of ``checkpoint``'s weights on the first test batch (the one test pass
    of a run with limit_test_batches=1), computed here from the logits."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("test")
    task = build_task(cfg, datamodule)
    task.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"])
    batch = next(iter(datamodule.test_dataloader()))
    with torch.no_grad():
        logits = task.eval()(batch["inputs"], batch["lengths"]).float()
    labels = batch["labels"]
    return F.cross_entropy(logits, labels).item(), (logits.argmax(-1) == labels).float().mean().item()


RUNS = [
    pytest.param(model, task, marks=_run_marks(task))
    for task in TASKS
    for model in MODELS
    if (model, task) not in UNRUNNABLE
]


@pytest.mark.parametrize(("model", "task"), RUNS)
def test_every_model_runs_a_few_steps_of_its_recipe_on_tiny_data(
    compose_train, shared_data_dir, tiny_sources, model, task
):
    # the recipe of the full profile over the tiny profile's data, the model shrunk on the command line
    cfg = compose_train(
        f"model={model}",
        f"data={task}",
        f"recipe=full/{family(model)}/{task}",
        *TINY_RUN,
        f"paths.data_dir={shared_data_dir}",
        *tiny_sources.get(task, []),
    )
    assert cfg.task.lr == recipe(model, task).task.lr
    record = run(cfg)
    assert record["status"] == "completed", record.get("message")
    result = json.loads(Path(cfg.paths.result_file).read_text())
    metrics = result["metrics"]
    if task in LM_TASKS:
        assert metrics["test/ppl"] == pytest.approx(math.exp(metrics["test/loss"]), rel=1e-5)
    else:
        loss, accuracy = first_test_batch(
            cfg, result["best_checkpoint"] or Path(cfg.paths.run_dir) / "checkpoints" / "last.ckpt"
        )
        assert metrics["test/loss"] == pytest.approx(loss, rel=1e-5, abs=1e-6)
        assert metrics["test/acc"] == pytest.approx(accuracy, abs=1e-6)
    for key in ("val/loss", "test/macs", "test/energy_mj"):
        assert math.isfinite(metrics[key]), key
    assert metrics["test/macs"] > 0 and 1 <= result["steps"] <= 2
    assert ("test/firing_rate" in metrics) == (model != "s4d")
    assert (Path(cfg.paths.run_dir) / "logs" / "metrics.csv").exists()
