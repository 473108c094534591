"""``logger=[csv,wandb]`` offline: a 2-cell multirun writes one offline wandb run per cell, each with
the resolved config, the cell's group, the task as job_type, model / neuron / profile tags, and the
test metrics in its summary. The runs are read back from wandb's own ``.wandb`` record files."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from lra_snn.config import PROJECT_ROOT

pytest.importorskip("wandb", reason="needs pip install -e .[wandb]")
from wandb.proto import wandb_internal_pb2

# wandb's run file is a LevelDB-style log: a 7-byte file header, then 32 KiB blocks of records, each
# with a 7-byte header (CRC32, length, type), a protobuf Record split across blocks when it is long.
FILE_HEADER, BLOCK, RECORD_HEADER = 7, 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every Record of a ``run-<id>.wandb`` file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb run file"
    records, pos, payload = [], FILE_HEADER, b""
    while pos + RECORD_HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < RECORD_HEADER:  # the rest of a block too short for a header is padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + RECORD_HEADER])
        chunk = data[pos + RECORD_HEADER : pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        payload = chunk if kind in (FULL, FIRST) else payload + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            records.append(record)
    return records


def fold_items(items, into: dict) -> None:
    """Apply config / summary update items (``key`` or ``nested_key`` paths, JSON values) to a dict."""
    for item in items:
        path = [item.key] if item.key else list(item.nested_key)
        node = into
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = json.loads(item.value_json)


def read_offline_run(run_dir: Path) -> dict:
    """Run header fields, final config, final summary and history (one dict per step, wandb's own ``_`` keys
    left out) of one ``offline-run-*`` folder, and the kind of its last record."""
    (run_file,) = run_dir.glob("run-*.wandb")
    run, config, summary, history, kinds = None, {}, {}, [], []
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        kinds.append(kind)
        if kind == "run":
            run = record.run
            fold_items(run.config.update, config)
        elif kind == "config":
            fold_items(record.config.update, config)
        elif kind == "summary":
            fold_items(record.summary.update, summary)
        elif kind == "history":
            step: dict = {}
            fold_items(record.history.item, step)
            history.append({key: value for key, value in step.items() if not key.startswith("_")})
    assert run is not None, f"{run_file} has no run record"
    return {
        "id": run.run_id,
        "group": run.run_group,
        "job_type": run.job_type,
        "tags": list(run.tags),
        "project": run.project,
        "name": run.display_name,
        "config": config,
        "summary": summary,
        "history": history,
        "finished": "exit" in kinds,
        "last_record": kinds[-1],
    }


def test_two_cell_multirun_writes_two_offline_runs_with_config_group_and_metrics(tmp_path, train_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        OMP_NUM_THREADS="1",
        WANDB_SILENT="true",
        WANDB_DIR=str(tmp_path / "wandb_home"),
        WANDB_CONFIG_DIR=str(tmp_path / "wandb_config"),
        WANDB_CACHE_DIR=str(tmp_path / "wandb_cache"),
    )
    command = [
        sys.executable,
        "-m",
        "lra_snn.train",
        "-m",
        "logger=[csv,wandb]",
        "data=listops",
        "model=s4d",
        "profile=tiny",
        "seed=1,2",
        "torch_threads=1",
        *train_overrides,
    ]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    results = {
        json.loads(p.read_text())["seed"]: json.loads(p.read_text())
        for p in (tmp_path / "results").rglob("result.json")
    }
    assert sorted(results) == [1, 2]
    for seed, result in sorted(results.items()):
        run_dir = Path(result["config"]["paths"]["run_dir"])
        (offline,) = (run_dir / "wandb").glob("offline-run-*")  # one run per cell: wandb.finish() between jobs
        run = read_offline_run(offline)
        assert run["finished"], "the run has no exit record (wandb.finish never ran)"
        assert run["project"] == "lra-snn" and run["job_type"] == "listops"
        assert run["group"] == f"tiny-listops-s4d-{result['config_hash']}"  # the seeds of one cell together
        assert run["name"] == f"s4d-listops-seed{seed}"
        assert sorted(run["tags"]) == ["model:s4d", "neuron:none", "profile:tiny"]
        # the resolved config, as recorded in result.json
        for section in ("seed", "data", "model", "trainer", "paths"):
            assert run["config"][section] == result["config"][section], section
        for metric in ("test/acc", "test/loss", "val/acc"):
            assert run["summary"][metric] == pytest.approx(result["metrics"][metric], rel=1e-6), metric
