"""Training parity of the Triton kernels and the PyTorch paths: one short run per backend, curves compared.

A short real training run (e.g. ListOps at the full recipe for a few hundred steps) shows whether
the Triton path and the PyTorch path give the same loss curve within float tolerance, and reports the
step time of each. The kernel tests run under the Triton interpreter on the CPU, which hides GPU
rounding differences (docs/kernels.md, "Correctness without a GPU"), so this comparison is repeated on
the GPU at full size.

    python -m lra_snn.cli.kernel_parity [--models lif_ssm,dsn_ssm,spike_ssm,prf] [--task listops]
        [--recipe full|tiny] [--steps 300] [--seed 1] [--tolerance 1e-4] [--warmup-steps 5]
        [--out results/bench] [--workdir DIR] [--data-dir DIR] [--override KEY=VALUE ...]

For each model the train config is composed twice (``--recipe full``: ``model=<model> data=<task>
profile=full``, the published recipe of the model's family; ``--recipe tiny``: ``profile=tiny``), identical but for
the neuron's backend, ``model.encoder.layer.neuron.backend`` = ``torch`` or ``triton``. Both are forced:
a Triton run whose kernels cannot run fails (``TritonUnavailable``) instead of falling back. Each run is
seeded alike, built as ``lra_snn.train`` builds a cell, and fit for ``--steps`` optimizer steps without
validation, checkpoints or loggers; outputs go under ``--workdir``. A callback records every step's
training loss (the loss the optimizer stepped on) and wall time (the GPU synchronised before each clock
read); a spy on ``lra_snn.ops.dispatch.select_backend`` counts which backend each primitive call chose,
and a run whose choices are not all its forced backend fails.

What "agree" means: with ``rel_t = |loss_torch_t - loss_triton_t| / max(|loss_torch_t|, |loss_triton_t|)``,
the curves agree when both runs made the same number of steps and ``rel_t <= --tolerance`` at every step.
One spike flipped by float rounding can move a spiking network's later trajectory, so the report also
gives the agreement over the first 10 steps (``agree_first_10``: same function, same first updates) and
the final-loss difference (how far the two trainings drifted); the exit status follows "agree".

Step time: median and interquartile range per backend over the steps after ``--warmup-steps`` (Triton
compiles its kernels in the first steps), and the ratio torch / triton (> 1: Triton is faster).

Without CUDA the runs use the CPU and the Triton run goes through the interpreter (``TRITON_INTERPRET=1``,
set here before triton is imported): far slower, for ``--recipe tiny`` sizes, which is how it is tested.

Writes ``kernel_parity_<device>_<stamp>.json`` under ``--out`` (meta, and per model the two runs' loss
curves, step times and dispatch counts, and the comparison), rewritten after each model so that a job
stopped by a time limit keeps the models it finished, and prints a markdown table. Exit status:
0 every model's curves agree, 1 a run failed or curves disagree, 2 bad usage.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():  # before anything imports triton: the forced Triton path then interprets
    os.environ.setdefault("TRITON_INTERPRET", "1")

import argparse
import contextlib
import datetime as dt
import functools
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from lra_snn.cli.bench import device_name, device_slug, spread
from lra_snn.config import PROJECT_ROOT, compose_train
from lra_snn.config.tasks import TASKS
from lra_snn.config.zoo import models, neuron
from lra_snn.neurons import neuron_class
from lra_snn.ops import dispatch
from lra_snn.results.record import git_commit, library_versions
from lra_snn.training.build import build_task, build_trainer

# the zoo models whose neuron has Triton kernels
KERNEL_MODELS = tuple(
    model for model in models() if (name := neuron(model)) and "triton" in neuron_class(name).supported_backends
)
BACKENDS = ("torch", "triton")
NEURON_BACKEND_KEY = "model.encoder.layer.neuron.backend"  # the same key in the S4D and SD-TCM blocks
EARLY_STEPS = 10
# no validation, checkpoints, loggers or progress output: only the training steps are run and timed
QUIET_TRAINING = (
    "logger=none",
    "~callbacks.checkpoint",
    "~callbacks.step_checkpoint",
    "~callbacks.lr_monitor",
    "++trainer.enable_checkpointing=false",
    "++trainer.limit_val_batches=0",
    "++trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
)


class StepRecorder(L.Callback):
    """Records each training step's loss (the value the optimizer stepped on) and wall time in seconds."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.step_times_s: list[float] = []
        self._started = 0.0

    @staticmethod
    def _clock(device: torch.device) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._started = self._clock(pl_module.device)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.step_times_s.append(self._clock(pl_module.device) - self._started)
        self.losses.append(float(outputs["loss"]))


@contextlib.contextmanager
def recorded_dispatch() -> Iterator[dict[str, dict[str, int]]]:
    """Counts ``{primitive: {backend: calls}}`` of what ``dispatch.select_backend`` chooses inside the block."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    original = dispatch.select_backend

    @functools.wraps(original)
    def counting(primitive: str, *args: Any, **kwargs: Any) -> str:
        choice = original(primitive, *args, **kwargs)
        counts[primitive][choice] += 1
        return choice

    dispatch.select_backend = counting
    try:
        yield counts
    finally:
        dispatch.select_backend = original


def run_overrides(model: str, options: argparse.Namespace, workdir: Path) -> list[str]:
    """The overrides shared by both backends' runs of ``model`` (the recipe, length, paths, quiet training)."""
    recipe = [f"model={model}", f"data={options.task}", f"profile={options.recipe}"]
    paths = [f"paths.output_dir={workdir}/outputs", f"paths.results_dir={workdir}/results"]
    if options.data_dir is not None:
        paths.append(f"paths.data_dir={options.data_dir}")
    return [
        *recipe,
        f"seed={options.seed}",
        f"trainer={'gpu' if torch.cuda.is_available() else 'cpu'}",
        "trainer.precision=32-true",  # the paths are compared in float32 (trainer=gpu would autocast to bf16)
        f"++trainer.max_steps={options.steps}",
        "trainer.max_epochs=-1",
        *QUIET_TRAINING,
        *paths,
        *options.override,
    ]


def train_steps(cfg: DictConfig, backend: str) -> dict[str, Any]:
    """Fit ``cfg`` for its ``trainer.max_steps`` and return the run's record (losses, step times, dispatch)."""
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    # again: the first run may generate the data (drawing random numbers) where the second reads the cache
    L.seed_everything(cfg.seed, workers=True)
    task = build_task(cfg, datamodule)
    recorder = StepRecorder()
    trainer = build_trainer(cfg, [recorder])
    with recorded_dispatch() as choices:
        trainer.fit(task, datamodule=datamodule)
    dispatch_counts = {primitive: dict(counts) for primitive, counts in choices.items()}
    chosen = sorted({choice for counts in dispatch_counts.values() for choice in counts})
    if chosen != [backend]:
        raise RuntimeError(
            f"backend {backend!r} was forced but the dispatch chose {chosen or 'nothing'} "
            f"({dispatch_counts}): the model's neurons did not run the {backend} path"
        )
    return {
        "status": "completed",
        "backend": backend,
        "steps": trainer.global_step,
        "losses": recorder.losses,
        "step_times_s": recorder.step_times_s,
        "dispatch": dispatch_counts,
        "n_params": sum(p.numel() for p in task.parameters()),
    }


def run_backend(model: str, backend: str, overrides: list[str]) -> dict[str, Any]:
    """One model's run on one backend; a failure is recorded (with its error), not raised."""
    all_overrides = [*overrides, f"{NEURON_BACKEND_KEY}={backend}"]
    started = time.time()
    try:
        record = train_steps(compose_train(all_overrides), backend)
    except Exception as error:  # a failed run is a result: the report says which and why
        record = {"status": "failed", "backend": backend, "error": f"{type(error).__name__}: {error}"}
    elapsed = time.time() - started
    print(f"{model} [{backend}]: {record['status']} in {elapsed:.1f} s", file=sys.stderr, flush=True)
    return {**record, "overrides": all_overrides, "wall_time_s": elapsed}


def compare_losses(reference: list[float], candidate: list[float], tolerance: float) -> dict[str, Any]:
    """Differences between two loss curves step by step, and whether they agree (module docstring)."""
    pairs = list(zip(reference, candidate))
    absolute = [abs(a - b) for a, b in pairs]
    relative = [diff / max(abs(a), abs(b)) if diff else 0.0 for diff, (a, b) in zip(absolute, pairs)]
    divergent = [step for step, rel in enumerate(relative) if rel > tolerance]
    same_length = len(reference) == len(candidate) and bool(pairs)
    return {
        "tolerance": tolerance,
        "compared_steps": len(pairs),
        "max_abs_diff": max(absolute, default=None),
        "max_rel_diff": max(relative, default=None),
        "first_divergent_step": divergent[0] if divergent else None,
        "agree": same_length and not divergent,
        "agree_first_10": same_length and all(rel <= tolerance for rel in relative[:EARLY_STEPS]),
        "final_abs_diff": absolute[-1] if pairs else None,
        "final_rel_diff": relative[-1] if pairs else None,
    }


def step_time_summary(step_times_s: list[float], warmup_steps: int) -> dict[str, Any]:
    """Median and interquartile range (ms) of the step times after the first ``warmup_steps``."""
    timed = step_times_s[warmup_steps:]
    if not timed:
        return {"timed_steps": 0, "median_ms": None, "iqr_ms": None}
    summary = spread(timed)
    return {
        "timed_steps": len(timed),
        "median_ms": 1e3 * summary["median_s"],
        "iqr_ms": 1e3 * (summary["q3_s"] - summary["q1_s"]),
        "min_ms": 1e3 * summary["min_s"],
        "max_ms": 1e3 * summary["max_s"],
    }


def compare_model(model: str, options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Both backends' runs of ``model``, their step times and the comparison of their loss curves."""
    overrides = run_overrides(model, options, workdir)
    runs = {backend: run_backend(model, backend, overrides) for backend in BACKENDS}
    if any(run["status"] != "completed" for run in runs.values()):
        return {"runs": runs, "comparison": None, "timing": None}
    timing: dict[str, Any] = {
        backend: step_time_summary(runs[backend]["step_times_s"], options.warmup_steps) for backend in BACKENDS
    }
    torch_ms, triton_ms = timing["torch"]["median_ms"], timing["triton"]["median_ms"]
    timing["speedup_torch_over_triton"] = torch_ms / triton_ms if torch_ms and triton_ms else None
    comparison = compare_losses(runs["torch"]["losses"], runs["triton"]["losses"], options.tolerance)
    return {"runs": runs, "comparison": comparison, "timing": timing}


def model_ok(result: dict[str, Any]) -> bool:
    """Both runs completed and their loss curves agree."""
    return result["comparison"] is not None and result["comparison"]["agree"]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per model: steps, loss differences, agreement and step times (median (interquartile range))."""
    lines = [
        "| model | steps | max abs loss diff | first divergent step | agree | torch ms/step | "
        "triton ms/step | speedup |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for model, result in results.items():
        comparison, timing = result["comparison"], result["timing"]
        if comparison is None:
            failures = "; ".join(
                f"{run['backend']}: {run['error']}" for run in result["runs"].values() if run["status"] != "completed"
            )
            lines.append(f"| {model} | - | - | - | failed ({failures}) | - | - | - |")
            continue
        first = comparison["first_divergent_step"]
        agreement = _yes_no(comparison["agree"])
        if not comparison["agree"]:
            agreement += f" (first {EARLY_STEPS} steps: {_yes_no(comparison['agree_first_10'])})"
        step_ms = [f"{_number(timing[b]['median_ms'])} ({_number(timing[b]['iqr_ms'])})" for b in BACKENDS]
        lines.append(
            f"| {model} | {comparison['compared_steps']} | {_number(comparison['max_abs_diff'])} | "
            f"{'-' if first is None else first} | {agreement} | {' | '.join(step_ms)} | "
            f"{_number(timing['speedup_torch_over_triton'])}x |"
        )
    if dispatch.interpreter_on():
        lines.append("\nTriton ran under the interpreter (TRITON_INTERPRET=1): its step times are no kernel speeds.")
    return "\n".join(lines)


def report_path(options: argparse.Namespace) -> Path:
    """``kernel_parity_<device>_<stamp>.json`` under ``--out``."""
    name = device_name(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    return options.out / f"kernel_parity_{device_slug(name)}_{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"


def write_report(path: Path, results: dict[str, dict[str, Any]], options: argparse.Namespace, argv: list[str]) -> None:
    """The JSON report at ``path``: meta and the per-model results so far."""
    name = device_name(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    stamp = path.stem.rsplit("_", 1)[-1]
    meta = {
        "command": ["python", "-m", "lra_snn.cli.kernel_parity", *argv],
        "created": stamp,
        "device_name": name,
        "versions": library_versions(),
        "git_commit": git_commit(),
        "triton_interpreter": dispatch.interpreter_on(),
        "seed": options.seed,
        "recipe": options.recipe,
        "task": options.task,
        "steps": options.steps,
        "tolerance": options.tolerance,
        "warmup_steps": options.warmup_steps,
        "user_overrides": options.override,
    }
    options.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "models": results}, indent=1))


def _models(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in KERNEL_MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{', '.join(unknown) or repr(text)}: not a zoo model whose neuron has "
            f"Triton kernels; choose from {', '.join(KERNEL_MODELS)}, comma-separated"
        )
    return names


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lra_snn.cli.kernel_parity",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--models",
        type=_models,
        default=list(KERNEL_MODELS),
        help=f"comma-separated, from {', '.join(KERNEL_MODELS)} (default: all)",
    )
    parser.add_argument("--task", default="listops", help="the data= task (default listops)")
    parser.add_argument(
        "--recipe",
        choices=("full", "tiny"),
        default="full",
        help="full: profile=full (the published recipe of the model's family, if it has one); tiny: profile=tiny",
    )
    parser.add_argument("--steps", type=_positive_int, default=300, help="optimizer steps per run (default 300)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tolerance", type=float, default=1e-4, help="relative loss difference allowed per step")
    parser.add_argument("--warmup-steps", type=int, default=5, help="first steps left out of the step time (default 5)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "bench", help="folder of the JSON")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="training outputs (default: a temporary folder, removed afterwards)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="paths.data_dir (default: the config's, this project's data/ with its caches)",
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra train-config override for every run (repeatable)",
    )
    options = parser.parse_args(argv)
    if options.task not in TASKS:
        parser.error(f"--task {options.task!r} is not a data= option; choose one of {', '.join(TASKS)}")
    if not 0 <= options.warmup_steps < options.steps:
        parser.error(f"--warmup-steps must be >= 0 and below --steps ({options.steps}), got {options.warmup_steps}")
    return options


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = parse_args(argv)
    with contextlib.ExitStack() as stack:
        workdir = options.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kernel_parity_")))
        path, results = report_path(options), {}
        for model in options.models:  # the report is rewritten after each model: a killed job keeps what it did
            results[model] = compare_model(model, options, workdir)
            write_report(path, results, options, argv)
    print(markdown_table(results))
    print(f"\nresults: {path}")
    return 0 if all(model_ok(result) for result in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
