"""``trainer=ddp`` with two CPU processes (gloo) on tiny ListOps: evaluation counts every example
exactly once (lra_snn.data.distributed), so the distributed test accuracy equals a single-process
evaluation of the same checkpoint. Split sizes are odd on purpose: a padding sampler would
evaluate one example twice and a dropping one would skip it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from lra_snn.config import PROJECT_ROOT
from lra_snn.data.distributed import EvaluatedExamples, UnpaddedDistributedSampler, shard_bounds
from lra_snn.tasks.classification import ClassificationTask

N_VAL, N_TEST = 61, 63
CELL = [
    "data=listops",
    "model=s4d",
    "profile=tiny",
    "torch_threads=1",
    f"data.n_val={N_VAL}",
    f"data.n_test={N_TEST}",
    "+callbacks.evaluated_examples._target_=lra_snn.data.distributed.EvaluatedExamples",
]


@pytest.mark.parametrize("n, world_size", [(63, 2), (64, 2), (5, 3), (2, 4)])
def test_shards_cover_every_index_once(n, world_size):
    shards = [list(UnpaddedDistributedSampler(range(n), num_replicas=world_size, rank=r)) for r in range(world_size)]
    assert sorted(i for shard in shards for i in shard) == list(range(n))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert [len(s) for s in shards] == [b - a for a, b in (shard_bounds(n, r, world_size) for r in range(world_size))]


def test_bad_rank_is_named():
    with pytest.raises(ValueError, match="rank=2, world_size=2"):
        shard_bounds(10, 2, 2)


def single_process_test(cfg, checkpoint: str) -> dict[str, float]:
    """Test metrics of ``checkpoint`` evaluated by one process on the same data."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    encoder = instantiate(cfg.model.encoder, **datamodule.encoder_kwargs())
    task = ClassificationTask.load_from_checkpoint(checkpoint, encoder=encoder, weights_only=False)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[EvaluatedExamples()],
    )
    return trainer.test(task, datamodule=datamodule, verbose=False)[0]


def test_ddp_two_cpu_processes_evaluate_every_example_once(tmp_path, train_overrides, compose_train):
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend for CPU DDP")
    command = [
        sys.executable,
        "-m",
        "lra_snn.train",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        *CELL,
        *train_overrides,
    ]
    done = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result_file,) = (tmp_path / "results").rglob("result.json")
    record = json.loads(result_file.read_text())
    assert record["status"] == "completed"
    assert "process_1" in " ".join(p.name for p in Path(record["config"]["paths"]["run_dir"]).iterdir())
    metrics = record["metrics"]
    assert metrics["val/n_examples"] == N_VAL and metrics["test/n_examples"] == N_TEST

    single = single_process_test(compose_train(*CELL), record["best_checkpoint"])
    assert single["test/n_examples"] == N_TEST
    assert metrics["test/acc"] == single["test/acc"]
