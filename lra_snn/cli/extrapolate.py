"""Length extrapolation: models trained on short ListOps, evaluated on 1x to 8x the trained length.

``python -m lra_snn.cli.extrapolate [--models s4d,lif_ssm] [--factors 1,2,4,8] [--out results/extrapolation]``
(``make extrapolate``). Each model is trained (or its completed cell reused) at the mini profile on
ListOps with causal S4D layers (``model.encoder.layer.bidirectional=false``, so it can stream) and
trees of depth <= 6 with <= 10 arguments, at lengths 10-100. Its best checkpoint is then evaluated
(``lra_snn.cli.eval``) on freshly generated test sets of the same tree recipe whose lengths lie in
``(factor * 50, factor * 100]``: 1x is the upper half of the trained range, 8x is 400-800 tokens.
Each set is evaluated in parallel mode and in streaming mode (one step at a time), measuring

- accuracy on the set (the task's test step);
- peak memory: the highest resident set size (RSS, ``/proc/self/statm``, sampled every millisecond
  by a thread) above the RSS just before the evaluation, after ``malloc_trim`` has returned freed
  memory to the system and after a two-example forward pass has paid the one-time costs (JIT
  compilation of the CPU scan kernels); it includes the data loader's batches;
- tokens per second: true (unpadded) tokens of the set over the evaluation's wall time.

Writes ``extrapolation.csv``, ``extrapolation.md`` (the table and how it was made) and
``extrapolation.png`` (accuracy against length, one line per model and mode) under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import ctypes.util
import logging
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate

from lra_snn.cli.eval import build, evaluate
from lra_snn.cli.figure_stats import wilson_interval
from lra_snn.cli.figure_style import model_style
from lra_snn.config import PROJECT_ROOT, compose_train
from lra_snn.config.locations import inside_shipped_runs, shipped_runs_refusal
from lra_snn.config.zoo import models as zoo_models
from lra_snn.data.listops.module import ListOpsDataModule
from lra_snn.models.streaming import unstreamable_parts
from lra_snn.training.cell import run
from lra_snn.training.progress import quiet_libraries
from lra_snn.training.validate import ConfigError, validate_config

TRAIN_OVERRIDES = (
    "data=listops",
    "profile=mini",
    "model.encoder.layer.bidirectional=false",
    "data.max_depth=6",
    "data.max_args=10",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
)
MODES = ("parallel", "stream")


@dataclass
class Row:
    model: str
    mode: str
    factor: int
    min_length: int
    max_length: int
    examples: int
    tokens: int
    accuracy: float
    peak_rss_mib: float
    tokens_per_s: float


class PeakRSS:
    """Highest RSS (bytes) above the RSS at entry, sampled every ``interval`` seconds by a thread."""

    def __init__(self, interval: float = 1e-3) -> None:
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def rss(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self.page

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss() - self.start)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        libc = ctypes.util.find_library("c")
        if libc:  # give freed heap back to the system, so an earlier evaluation's memory is not reused unseen
            ctypes.CDLL(libc).malloc_trim(0)
        self.start = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss() - self.start)


def train(model: str, results_dir: Path, extra: list[str]) -> tuple[str, dict]:
    """Train the model's cell (or reuse it when completed); its best checkpoint and result record."""
    cfg = compose_train([*TRAIN_OVERRIDES, f"model={model}", f"paths.results_dir={results_dir}", *extra])
    print(f"training {model} on lengths 10-100 (a completed cell is reused)", flush=True)
    record = run(cfg)
    if record.get("status") != "completed" or not record.get("best_checkpoint"):
        raise RuntimeError(f"training {model} did not complete: {record.get('status')} {record.get('message', '')}")
    checkpoint = record["best_checkpoint"]
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(
            f"{checkpoint}, the completed cell's best checkpoint, is gone; "
            "add skip_completed=false to --train-args to train it again"
        )
    return checkpoint, record


def measure(model: str, checkpoint: str, factor: int, n_test: int, batch_size: int) -> list[Row]:
    """Accuracy, peak RSS and tokens/s of the checkpoint on lengths (factor * 50, factor * 100], in both modes."""
    low, high = 50 * factor, 100 * factor
    overrides = [
        f"data.min_length={low}",
        f"data.max_length={high + 1}",  # the generator's bounds are exclusive
        f"data.n_test={n_test}",
        "data.n_train=16",  # the eval sets are generated with (small) train and val splits beside them
        "data.n_val=16",
        f"data.eval_batch_size={batch_size}",
    ]
    rows = []
    for mode in MODES:
        print(f"{model} {mode} {factor}x: lengths {low + 1}-{high}, {n_test} examples ...", flush=True)
        task, datamodule, cfg = build(checkpoint, overrides)
        datamodule.setup("test")
        batches = list(datamodule.test_dataloader())
        lengths = [batch["lengths"] for batch in batches]
        tokens = int(sum(int(length.sum()) for length in lengths))
        if mode == "stream":
            task.stream()
        with torch.no_grad():  # one small batch first: one-time costs (JIT compilation, lazy imports) stay out
            task.eval()(batches[0]["inputs"][:2], batches[0]["lengths"][:2])
        with torch.no_grad(), PeakRSS() as memory:
            started = time.perf_counter()
            metrics = evaluate(task, datamodule, cfg, "test", mode)
            seconds = time.perf_counter() - started
        examples = sum(len(length) for length in lengths)
        rows.append(
            Row(
                model,
                mode,
                factor,
                low + 1,
                high,
                examples,
                tokens,
                metrics["test/acc"],
                memory.peak / 2**20,
                tokens / seconds,
            )
        )
        row = rows[-1]
        print(
            f"{model} {mode} {factor}x: accuracy {row.accuracy:.4f}, peak RSS {row.peak_rss_mib:.1f} MiB, "
            f"{row.tokens_per_s:.0f} tokens/s",
            flush=True,
        )
    return rows


def accuracy_interval(row: Row) -> tuple[float, float]:
    """The 95 % Wilson interval (fractions) of the row's accuracy over its test examples."""
    return wilson_interval(row.accuracy, row.examples)


def write_csv(rows: list[Row], path: Path) -> None:
    """The rows as CSV, each with the 95 % Wilson interval of its accuracy (``wilson95_low``, ``wilson95_high``)."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*asdict(rows[0]), "wilson95_low", "wilson95_high"])
        writer.writeheader()
        for row in rows:
            low, high = accuracy_interval(row)
            writer.writerow({**asdict(row), "wilson95_low": round(low, 4), "wilson95_high": round(high, 4)})


def markdown(rows: list[Row], cells: dict[str, dict], command: str, threads: int, load: tuple[float, float]) -> str:
    lines = [
        "# Length extrapolation on ListOps (CPU)",
        "",
        f"Made by `{command}` with {threads} torch thread(s) on the CPU ({os.cpu_count()} cores; 1-minute load "
        f"average {load[0]:.1f} when the evaluations started, {load[1]:.1f} when they ended: other processes "
        "shared the cores, so tokens per second are indicative). Models trained on lengths 10-100 "
        "(mini profile, causal S4D layers, trees of depth <= 6 with <= 10 arguments); each test set "
        "holds fresh trees of the same recipe with lengths in (50 x factor, 100 x factor]. Peak memory: "
        "the highest RSS above the RSS before the evaluation (sampled every 1 ms, after malloc_trim), "
        "data loading included. Tokens per second: true tokens over the evaluation's wall time. "
        "95 % interval: the Wilson score interval of the accuracy over the set's examples.",
        "",
        "| model | mode | length | lengths | examples | accuracy (%) | 95 % interval (%) | peak RSS (MiB) | tokens/s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        low, high = accuracy_interval(r)
        lines.append(
            f"| {r.model} | {r.mode} | {r.factor}x | {r.min_length}-{r.max_length} | {r.examples} | "
            f"{100 * r.accuracy:.1f} | {100 * low:.1f}-{100 * high:.1f} | "
            f"{r.peak_rss_mib:.1f} | {r.tokens_per_s:,.0f} |"
        )
    lines += ["", "Trained cells (best checkpoint by val/acc; accuracy on their own test split, lengths 10-100):", ""]
    for model, record in cells.items():
        lines.append(
            f"- {model}: cell `{record['config_hash']}`, {record['steps']} steps, "
            f"test/acc {100 * record['metrics']['test/acc']:.1f}%"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for model, mode in dict.fromkeys((r.model, r.mode) for r in rows):
        points = [r for r in rows if (r.model, r.mode) == (model, mode)]
        parallel = mode == "parallel"
        intervals = [accuracy_interval(r) for r in points]
        axes.errorbar(
            [r.max_length for r in points],
            [100 * r.accuracy for r in points],
            yerr=[
                [100 * (r.accuracy - low) for r, (low, _) in zip(points, intervals)],
                [100 * (high - r.accuracy) for r, (_, high) in zip(points, intervals)],
            ],
            capsize=3,
            elinewidth=0.8,
            marker="o" if parallel else "x",
            markersize=9 if parallel else 7,
            markerfacecolor="none" if parallel else None,
            linestyle="-" if parallel else ":",
            color=model_style(model).colour,  # the colour of the model in every figure
            label=f"{model}, {mode}",
        )
    chance = 100 / ListOpsDataModule.n_classes
    axes.axhline(chance, color="grey", linestyle="--", linewidth=1, label=f"chance ({chance:.0f}%)")
    axes.set_ylim(0, 100 * max(r.accuracy for r in rows) + 10)
    bands = {r.max_length: f"{r.factor}x\n{r.min_length}-{r.max_length}" for r in rows}
    axes.set_xscale("log", base=2)
    axes.set_xticks(sorted(bands), [bands[length] for length in sorted(bands)])
    axes.minorticks_off()
    axes.yaxis.set_major_formatter(PercentFormatter())
    axes.set_xlabel("test lengths (tokens), as a multiple of the trained length (100)")
    axes.set_ylabel("test accuracy")
    accuracy = {(r.model, r.factor, r.mode): r.accuracy for r in rows}
    agree = all(accuracy.get((r.model, r.factor, "stream"), r.accuracy) == r.accuracy for r in rows)
    note = "\nstreaming = parallel at every point (the markers overlap)" if agree else ""
    examples = sorted({r.examples for r in rows})
    axes.set_title(
        f"ListOps length extrapolation (trained on lengths 10-100){note}\n"
        f"bars: 95 % Wilson interval over the {'/'.join(map(str, examples))} test examples of each set",
        fontsize=9,
    )
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=200)
    plt.close(figure)


def argument_problems(args: argparse.Namespace) -> list[str]:
    """What no run can use, found before anything trains: counts below 1, factors that are not whole
    numbers >= 1, models outside the zoo, training overrides the config refuses, models that cannot
    run step by step (the streaming half of the table), and an output folder inside the shipped runs."""
    problems = [
        f"--{name.replace('_', '-')} {value}: give a whole number >= 1"
        for name, value in (("n_test", args.n_test), ("batch_size", args.batch_size), ("threads", args.threads))
        if value < 1
    ]
    factors = args.factors.split(",")
    if not all(factor.strip().isdigit() and int(factor) >= 1 for factor in factors):
        problems.append(f"--factors {args.factors}: give whole numbers >= 1, comma-separated, e.g. --factors 1,2,4,8")
    for model in args.models.split(","):
        if model not in zoo_models():
            problems.append(f"--models: {model!r} is not a zoo model; the zoo: {', '.join(zoo_models())}")
            continue
        extra = [f"paths.results_dir={args.results_dir}", *args.train_args.split()]
        problems += [f"--models {model}: {line}" for line in model_problems(model, extra)]
    if inside_shipped_runs(args.out):
        problems.append(shipped_runs_refusal("--out", args.out))
    return problems


def model_problems(model: str, extra: list[str]) -> list[str]:
    """Why ``model``, trained with ``extra`` overrides, cannot be measured here (empty when it can): the
    config's own checks, then whether its encoder runs step by step."""
    cfg = compose_train([*TRAIN_OVERRIDES, f"model={model}", *extra])
    try:
        validate_config(cfg, choices={})
    except ConfigError as error:
        return list(error.problems)
    encoder = instantiate(cfg.model.encoder, **instantiate(cfg.data).encoder_kwargs())
    return [f"cannot stream: {part}" for part in unstreamable_parts(encoder)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="s4d,lif_ssm", help="zoo models (comma-separated), each must stream")
    parser.add_argument("--factors", default="1,2,4,8", help="length multiples of the trained length")
    parser.add_argument("--n-test", type=int, default=200, help="examples per test set")
    parser.add_argument("--batch-size", type=int, default=32, help="evaluation batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "extrapolation")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=PROJECT_ROOT / "results" / "local",
        help="where the trained cells record their result.json",
    )
    parser.add_argument("--train-args", default="", help="extra key=value overrides for training (space-separated)")
    args = parser.parse_args(argv)
    problems = argument_problems(args)
    if problems:
        parser.error("nothing was trained:\n  " + "\n  ".join(problems))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    quiet_libraries()  # Lightning's tips and its repeated deprecation warning, once for all the cells
    torch.set_num_threads(args.threads)
    extra = [f"torch_threads={args.threads}", *args.train_args.split()]
    rows: list[Row] = []
    cells = {}
    checkpoints = {}
    for model in args.models.split(","):
        checkpoints[model], cells[model] = train(model, args.results_dir, extra)
    load_before = os.getloadavg()[0]
    for model, checkpoint in checkpoints.items():
        for factor in (int(f) for f in args.factors.split(",")):
            rows += measure(model, checkpoint, factor, args.n_test, args.batch_size)
    load = (load_before, os.getloadavg()[0])
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "extrapolation.csv")
    command = " ".join(["python -m lra_snn.cli.extrapolate", *(sys.argv[1:] if argv is None else argv)])
    (args.out / "extrapolation.md").write_text(markdown(rows, cells, command, args.threads, load))
    plot(rows, args.out / "extrapolation.png")
    print(f"wrote {args.out}/extrapolation.{{csv,md,png}}")


if __name__ == "__main__":
    main()
