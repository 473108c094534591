"""Every experiment config (conf/experiment/**) composes with Hydra's compose API, follows the published
recipe it names, and runs a couple of steps on tiny data (result written; the test loss and accuracy are
those of the evaluated checkpoint on the test batch, recomputed here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.nn import functional as F

from lra_snn.config import PROJECT_ROOT
from lra_snn.training.build import build_task
from lra_snn.training.cell import run
from tests.fakes import fake_batches, write_cifar_archive, write_corpus, write_tsv_folder

CONF = PROJECT_ROOT / "conf"
EXPERIMENTS = sorted(
    p.relative_to(CONF / "experiment").with_suffix("").as_posix() for p in (CONF / "experiment").rglob("*.yaml")
)
ZOO = ("s4d", "prf", "spike_ssm", "psn_ssm", "masked_psn_ssm", "sliding_psn_ssm", "dsn_ssm", "lif_ssm")
BINARY = ("binary_s4d", "binary_s4d_gsu")  # Stan and Rhodes 2024: LRA recipes only
SPIKING_SSM = ("spike_ssm", "psn_ssm", "masked_psn_ssm", "sliding_psn_ssm", "dsn_ssm", "lif_ssm")
LRA_TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
FIXED_LENGTH = ("psn_ssm", "masked_psn_ssm")  # T^2 weights: no Path-X; non-causal: no language model
TINY_RUN = [
    "profile=tiny",
    "model.encoder.d_model=16",
    "model.encoder.n_layers=1",
    "trainer.max_epochs=1",
    "++trainer.limit_train_batches=2",
    "++trainer.limit_val_batches=1",
    "++trainer.limit_test_batches=1",
]


def split_name(experiment: str) -> tuple[str, str]:
    """``lra/prf_listops`` -> ("prf", "listops"); ``lm/lif_ssm_wt103`` -> ("lif_ssm", "wikitext103")."""
    stem = experiment.split("/")[1]
    model, task = stem.rsplit("_", 1)
    return model, "wikitext103" if task == "wt103" else task


def experiment_file(experiment: str) -> Path:
    return CONF / "experiment" / f"{experiment}.yaml"


def missing_group_options(experiment: str) -> list[str]:
    """The ``override /group: option`` entries whose conf/group/option.yaml does not exist (yet)."""
    defaults = OmegaConf.load(experiment_file(experiment)).defaults
    missing = []
    for entry in defaults:
        ((key, option),) = entry.items()
        group = key.removeprefix("override /")
        if not (CONF / group / f"{option}.yaml").exists():
            missing.append(f"conf/{group}/{option}.yaml")
    return missing


def skip_unless_composable(experiment: str) -> None:
    missing = missing_group_options(experiment)
    if missing:
        pytest.skip(f"{experiment} needs {', '.join(missing)}, which does not exist yet")


def recipe(experiment: str):
    """The experiment file's own settings (without composing)."""
    return OmegaConf.load(experiment_file(experiment))


def test_there_is_an_experiment_for_every_model_and_task():
    expected = {f"lra/{m}_{t}" for m in ZOO + BINARY for t in LRA_TASKS if not (m in FIXED_LENGTH and t == "pathx")}
    expected |= {f"lm/{m}_wt103" for m in ZOO if m not in FIXED_LENGTH}
    assert set(EXPERIMENTS) == expected


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_names_its_recipe_and_composes_at_full_size(compose_train, experiment):
    model, task = split_name(experiment)
    sources = {"s4d": "S4 repo", "prf": "Table 8", "binary_s4d": "Stan and Rhodes", "binary_s4d_gsu": "Stan and Rhodes"}
    source = "SpikingSSM" if task == "wikitext103" else sources.get(model, "SpikingSSM")
    header = experiment_file(experiment).read_text().split("defaults:")[0]
    assert source in header, f"{experiment}: the header comment should name the recipe ({source})"
    skip_unless_composable(experiment)
    cfg = compose_train(f"experiment={experiment}")
    assert (cfg.model.name, cfg.task_name, cfg.profile_name) == (model, task, "full")


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
def test_prf_experiments_follow_table_8(task):
    cfg = recipe(f"lra/prf_{task}")
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


@pytest.mark.parametrize("model", [m for m in ZOO + BINARY if m != "prf"])
@pytest.mark.parametrize("task", sorted(S4_CONFIGS))
def test_s4d_block_experiments_follow_the_s4_rows(model, task):
    if model in FIXED_LENGTH and task == "pathx":
        pytest.skip("no fixed-length PSN on Path-X (T^2 = 16,384^2 weights per layer)")
    cfg = recipe(f"lra/{model}_{task}")
    layers, d_model, d_state, prenorm, dropout, lr, wd, batch, epochs, warmup, total = S4_CONFIGS[task]
    norm = "batch"
    if model in SPIKING_SSM:  # SpikingSSMs' configs: d_state 4 on ListOps and Text, 64 elsewhere; weight decay
        d_state = 4 if task in ("listops", "text") else 64  # 0.01 (0.05 on Text); LayerNorm on Image
        wd = 0.05 if task == "text" else 0.01
        norm = "layer" if task == "image" else "batch"
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


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e.startswith("lm/")])
def test_lm_experiments_follow_the_wt103_recipe(compose_train, experiment):
    cfg = compose_train(f"experiment={experiment}")
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
    return tmp_path_factory.mktemp("experiment_data")


def _run_marks(experiment: str) -> list:
    return [] if experiment.endswith("_listops") else [pytest.mark.slow]


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


@pytest.mark.parametrize("experiment", [pytest.param(e, marks=_run_marks(e)) for e in EXPERIMENTS])
def test_experiment_runs_a_few_steps_on_tiny_data(compose_train, shared_data_dir, tiny_sources, experiment):
    skip_unless_composable(experiment)
    model, task = split_name(experiment)
    cfg = compose_train(
        f"experiment={experiment}", *TINY_RUN, f"paths.data_dir={shared_data_dir}", *tiny_sources.get(task, [])
    )
    record = run(cfg)
    assert record["status"] == "completed", record.get("message")
    result = json.loads(Path(cfg.paths.result_file).read_text())
    metrics = result["metrics"]
    if task == "wikitext103":
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
