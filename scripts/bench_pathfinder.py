"""Pathfinder / Path-X data benchmark: generator throughput and cached-loader speed against a model step.

Measures (1) the wall time to generate ``--n-images`` Pathfinder-32 images into a ``datasets`` Arrow
file (the data module's generated source) with 1 and with ``--workers`` processes, and (2) on a small
generated Path-X set (128 px, L = 16,384), cached as uint8 by the data module, the train loader's batches per second
against the time of one training step (forward + backward + AdamW) of a small S4D (the mini
profile's: d_model 64, 4 layers, d_state 4) on those batches, which shows whether the loader can
be the bottleneck. Prints a summary and writes JSON to ``--out`` (``pathfinder_<timestamp>.json``).

    .venv/bin/python scripts/bench_pathfinder.py [--n-images 1000] [--workers 2] [--pathx-images 64]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from torch.nn import functional as F

from lra_snn.cli.bench import device_name
from lra_snn.data.pathfinder.generate import SnakeParams
from lra_snn.data.pathfinder.module import PathfinderDataModule
from lra_snn.data.pathfinder.source import generated_dataset
from lra_snn.models.backbone import SequenceEncoder
from lra_snn.models.blocks import S4DBlock


def time_generation(n_images: int, workers: int, seed: int) -> float:
    """Seconds to write ``n_images`` Pathfinder-32 images (LRA settings) with ``workers`` processes."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        generated_dataset(SnakeParams.lra(32), n_images, 100, seed, workers, Path(folder))
        return time.perf_counter() - started


def loader_batches_per_second(module: PathfinderDataModule, n_batches: int) -> float:
    """Train batches per second read from the cache (epochs repeated until ``n_batches`` are read)."""
    read = 0
    started = time.perf_counter()
    while read < n_batches:
        for _ in module.train_dataloader():
            read += 1
            if read == n_batches:
                break
    return read / (time.perf_counter() - started)


def s4d_step_seconds(
    module: PathfinderDataModule, d_model: int, n_layers: int, d_state: int, steps: int
) -> list[float]:
    """Seconds of each of ``steps`` training steps (after one warm-up) of a small S4D on Path-X batches."""
    torch.manual_seed(0)
    layer = partial(S4DBlock, d_state=d_state, init="inv", bidirectional=True)
    encoder = SequenceEncoder(d_model=d_model, n_layers=n_layers, layer=layer, **module.encoder_kwargs())
    head = torch.nn.Linear(d_model, module.n_classes)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-3)
    batch = next(iter(module.train_dataloader()))
    timings = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        features = encoder(batch["inputs"], batch["lengths"])
        loss = F.cross_entropy(head(features.mean(dim=1)), batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - started)
    return timings[1:]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-images", type=int, default=1000, help="Pathfinder-32 images to generate")
    p.add_argument("--workers", type=int, default=2, help="processes for the parallel generation run")
    p.add_argument("--pathx-images", type=int, default=64, help="Path-X images generated for the loader test")
    p.add_argument("--batch-size", type=int, default=16, help="Path-X batch size (S4 recipe: 16)")
    p.add_argument("--loader-batches", type=int, default=200, help="cached batches read to time the loader")
    p.add_argument("--d-model", type=int, default=64, help="width of the small S4D")
    p.add_argument("--n-layers", type=int, default=4, help="depth of the small S4D")
    p.add_argument("--d-state", type=int, default=4, help="S4D state size (conf/model/s4d.yaml: 4)")
    p.add_argument("--steps", type=int, default=3, help="timed S4D training steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results/bench"))
    args = p.parse_args(argv)
    if (
        min(
            args.n_images,
            args.workers,
            args.pathx_images,
            args.batch_size,
            args.loader_batches,
            args.steps,
            args.d_model,
            args.n_layers,
            args.d_state,
        )
        < 1
    ):
        p.error("every count must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    generation = {
        str(workers): time_generation(args.n_images, workers, args.seed) for workers in sorted({1, args.workers})
    }
    with tempfile.TemporaryDirectory() as data_dir:
        module = PathfinderDataModule(
            data_dir=data_dir,
            resolution=128,
            n_images=args.pathx_images,
            images_per_batch=args.pathx_images,
            generator_seed=args.seed,
            batch_size=args.batch_size,
        )
        started = time.perf_counter()
        module.prepare_data()
        prepare_s = time.perf_counter() - started
        module.setup()
        batches_per_s = loader_batches_per_second(module, args.loader_batches)
        steps = s4d_step_seconds(module, args.d_model, args.n_layers, args.d_state, args.steps)
    step_s = statistics.median(steps)
    record = {
        "created": dt.datetime.now().strftime("%Y%m%d-%H%M%S"),
        "command": [sys.executable, *sys.argv],
        "machine": {
            "cpu": device_name(torch.device("cpu")),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "pathfinder32_generation": {"n_images": args.n_images, "seconds_by_workers": generation},
        "pathx_loader": {
            "n_images": args.pathx_images,
            "batch_size": args.batch_size,
            "prepare_seconds": prepare_s,
            "cached_batches_per_second": batches_per_s,
        },
        "pathx_s4d_step": {
            "d_model": args.d_model,
            "n_layers": args.n_layers,
            "d_state": args.d_state,
            "batch_size": args.batch_size,
            "step_seconds": steps,
            "median_step_seconds": step_s,
            "steps_per_second": 1 / step_s,
        },
    }
    for workers, seconds in generation.items():
        print(
            f"Pathfinder-32: {args.n_images} images in {seconds:.1f} s with {workers} process(es) "
            f"({args.n_images / seconds:.0f} images/s)"
        )
    print(
        f"Path-X: {args.pathx_images} images generated and cached in {prepare_s:.1f} s; cached loader "
        f"{batches_per_s:.1f} batches/s of {args.batch_size}; S4D (d_model {args.d_model}, {args.n_layers} layers) "
        f"step {step_s:.2f} s = {1 / step_s:.3f} steps/s: the loader is {batches_per_s * step_s:.0f}x faster"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"pathfinder_{record['created']}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
