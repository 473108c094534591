"""Where a training step's time goes, per zoo model (``make profile-step``).

For each model, one cell (``model=<name> data=<task> profile=<profile>``, mini by default) is built as the
main job builds it, one training batch is drawn, and ``--steps`` optimiser steps (forward, loss,
backward, AdamW) are timed after ``--warmup``. During the same steps every module of a part is timed
forward (pre- and post-forward hooks) and backward (pre- and post-backward hooks), the parts being
the S4D convolution (``S4D``: kernel and FFT convolution), the neuron (``Neuron``), the linear layers
(``nn.Linear``, ``nn.Embedding``), the gate (``nn.GLU``, the gated spiking unit), normalisation,
dropout and activations; the optimiser step is timed apart, and the rest of the step (loss, autograd
bookkeeping, Python) is "framework". A part's modules nest in no other part's, so the shares add up.
The hooks cost a little time themselves (counted in the parts they wrap), so the step is also timed
without them, and both totals are reported.

    python benchmarks/profile_step.py [--models lif_ssm,s4d] [--task listops] [--steps 5] [--threads 1]

Writes ``results/bench/profile_step_<stamp>.json`` and prints a markdown table (ms per step and share).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch import nn

from lra_snn.config.compose import compose_train
from lra_snn.config.zoo import models
from lra_snn.models.backbone import SequenceNorm
from lra_snn.models.blocks import GatedSpikingUnit
from lra_snn.models.s4d import S4D
from lra_snn.neurons.base import Neuron
from lra_snn.optim.groups import param_groups
from lra_snn.training.build import build_task

# the parts of a step, each by the module types whose forward and backward it times (first match wins)
PARTS: tuple[tuple[str, tuple[type[nn.Module], ...]], ...] = (
    ("S4D convolution", (S4D,)),
    ("neuron", (Neuron,)),
    ("linear", (nn.Linear, nn.Embedding)),
    ("GLU / GSU", (nn.GLU, GatedSpikingUnit)),
    ("norm", (SequenceNorm, nn.LayerNorm, nn.BatchNorm1d)),
    ("dropout", (nn.Dropout,)),
    ("activation", (nn.GELU,)),
)
OPTIMIZER = "optimizer"
FRAMEWORK = "framework"


def part_of(module: nn.Module) -> str | None:
    """The part a module's time counts in, or None (its children are looked at instead)."""
    for name, types in PARTS:
        if isinstance(module, types):
            return name
    return None


class PartClock:
    """Wall time of each part's forward and backward, from module hooks (the CPU runs them in turn)."""

    def __init__(self, root: nn.Module) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.handles = []
        self._started: dict[int, float] = {}
        self._attach(root)

    def _attach(self, module: nn.Module) -> None:
        part = part_of(module)
        if part is None:
            for child in module.children():
                self._attach(child)
            return
        key = id(module)
        self.handles += [
            module.register_forward_pre_hook(lambda *_: self._start(key)),
            module.register_forward_hook(lambda *_: self._stop(key, part)),
            module.register_full_backward_pre_hook(lambda *_: self._start(key)),
            module.register_full_backward_hook(lambda *_: self._stop(key, part)),
        ]

    def _start(self, key: int) -> None:
        self._started[key] = time.perf_counter()

    def _stop(self, key: int, part: str) -> None:
        started = self._started.pop(key, None)
        if started is not None:
            self.seconds[part] += time.perf_counter() - started

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def build_cell(model: str, task: str, profile: str) -> tuple[nn.Module, dict, torch.optim.Optimizer]:
    """The task module of a cell, one training batch and its AdamW over the task's parameter groups."""
    cfg = compose_train([f"model={model}", f"data={task}", f"profile={profile}"])
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = build_task(cfg, datamodule)
    module.train()
    batch = next(iter(datamodule.train_dataloader()))
    hp = module.hparams
    optimizer = torch.optim.AdamW(param_groups(module, hp.lr, hp.weight_decay, hp.dynamics_lr), betas=tuple(hp.betas))
    return module, batch, optimizer


def one_step(module: nn.Module, batch: dict, optimizer: torch.optim.Optimizer, clock: dict[str, float]) -> float:
    """One optimiser step; its wall time, and the optimiser's alone added to ``clock``."""
    begin = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss = module.training_step(batch, 0)
    loss.backward()
    before_optimizer = time.perf_counter()
    optimizer.step()
    end = time.perf_counter()
    clock[OPTIMIZER] += end - before_optimizer
    return end - begin


def profile_model(model: str, task: str, profile: str, steps: int, warmup: int) -> dict:
    """Per-step milliseconds of each part of ``model``'s training step on ``task``, and the step's."""
    torch.manual_seed(0)
    module, batch, optimizer = build_cell(model, task, profile)
    scratch: dict[str, float] = defaultdict(float)
    for _ in range(warmup):
        one_step(module, batch, optimizer, scratch)
    plain = [one_step(module, batch, optimizer, scratch) for _ in range(steps)]
    clock = PartClock(module)
    optimizer_time: dict[str, float] = defaultdict(float)
    try:
        hooked = [one_step(module, batch, optimizer, optimizer_time) for _ in range(steps)]
    finally:
        clock.remove()
    per_step = {part: 1e3 * seconds / steps for part, seconds in clock.seconds.items()}
    per_step[OPTIMIZER] = 1e3 * optimizer_time[OPTIMIZER] / steps
    step_ms = 1e3 * sum(hooked) / steps
    per_step[FRAMEWORK] = step_ms - sum(per_step.values())
    return {
        "model": model,
        "task": task,
        "profile": profile,
        "step_ms": step_ms,
        "step_ms_without_hooks": 1e3 * statistics.fmean(plain),
        "parts_ms": per_step,
        "parameters": sum(p.numel() for p in module.parameters()),
    }


def markdown(results: list[dict]) -> str:
    """One row per model: step time, then each part's milliseconds and share of the step."""
    parts = [name for name, _ in PARTS] + [OPTIMIZER, FRAMEWORK]
    lines = [
        "| model | step ms (no hooks) | " + " | ".join(parts) + " |",
        "|---|---:|" + "---:|" * len(parts),
    ]
    for r in results:
        cells = []
        for part in parts:
            ms = r["parts_ms"].get(part)
            cells.append("-" if ms is None else f"{ms:.1f} ({100 * ms / r['step_ms']:.0f} %)")
        lines.append(
            f"| {r['model']} | {r['step_ms']:.1f} ({r['step_ms_without_hooks']:.1f}) | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(models()))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown model(s) {unknown or text!r}; the zoo: {', '.join(models())}")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/profile_step.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=_names, default=list(models()), help="comma-separated zoo models (default: all)")
    p.add_argument("--task", default="listops", help="the data config of the cell")
    p.add_argument("--profile", default="mini", help="the profile of the cell")
    p.add_argument("--steps", type=int, default=5, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=Path("results/bench"))
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--steps and --threads must be positive, --warmup >= 0")
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*self.log.*")  # the task logs through a trainer; none here
    results = []
    for model in args.models:
        results.append(profile_model(model, args.task, args.profile, args.steps, args.warmup))
        print(f"done: {model}", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.out / f"profile_step_{stamp}.json"
    meta = {"command": ["python", "benchmarks/profile_step.py", *(argv or sys.argv[1:])], "threads": args.threads}
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(
        f"Training step of each model, {args.task} at the {args.profile} profile, {args.threads} thread(s): "
        "ms per step (share)"
    )
    print(markdown(results))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
