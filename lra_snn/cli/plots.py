"""Figures of the benchmark from real results: accuracy vs energy per task, neuron speedup vs
sequence length, and training curves per cell (PNG, matplotlib).

- ``acc_vs_energy_<profile>_<task>.png``: one point per model, the mean over seeds of the test
  metric at the best-validation checkpoint against the mean test energy per example (mJ, the
  ``EnergyMeter`` convention), with the seed standard deviation as error bars. The runs that
  count are the leaderboard's (``lra_snn.results.board``: the newest config with completed runs, one run per seed).
- ``bench_speedup_<device>.png``: sequential / parallel time ratio per neuron against L, forward
  and forward + backward, from the newest ``lra_snn.cli.bench`` JSON of each device.
- ``curves/<profile>_<task>_<model>_<hash>.png``: training loss per step and validation metrics,
  one line per seed, from each run's CSV log (``<run_dir>/logs/metrics.csv``).

A kind of figure with no data is skipped with a printed reason.

    python -m lra_snn.cli.plots [--results results/reference-runs] [--bench results/bench] [--out results/figures]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from lra_snn.results.board import Group, group_runs, mean_and_std
from lra_snn.results.runs import load_runs, primary_metric_name

PASS_TITLES = {"forward": "forward (inference)", "forward_backward": "forward + backward (training)"}
CURVE_PANELS = (
    ("train/loss_step", "training loss"),
    ("val/loss", "validation loss"),
    ("val/acc", "validation accuracy"),
)


# --------------------------------------------------------------------------- accuracy vs energy


def energy_points(group: Group) -> dict | None:
    """Mean and seed std of the ranked metric and of the energy per example; None without energy."""
    points = [
        (r.metric, r.energy_mj)
        for r in group.with_status("completed")
        if r.metric is not None and r.energy_mj is not None
    ]
    if not points:
        return None
    metric, metric_std = mean_and_std([m for m, _ in points])
    energy, energy_std = mean_and_std([e for _, e in points])
    return {
        "model": group.model,
        "metric": metric,
        "metric_std": metric_std or 0.0,
        "energy_mj": energy,
        "energy_std": energy_std or 0.0,
        "n_seeds": len(points),
    }


def plot_accuracy_vs_energy(groups: dict[tuple[str, str, str], Group], out: Path) -> list[Path]:
    """One figure per (profile, task) that has at least one model with energy numbers."""
    by_panel: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for (profile, _model, task), group in sorted(groups.items()):
        point = energy_points(group)
        if point is not None:
            by_panel[(profile, task)].append(point)
    written = []
    for (profile, task), points in sorted(by_panel.items()):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for p in points:
            ax.errorbar(p["energy_mj"], p["metric"], xerr=p["energy_std"], yerr=p["metric_std"], fmt="o", capsize=3)
            ax.annotate(
                f"{p['model']} ({p['n_seeds']})",
                (p["energy_mj"], p["metric"]),
                textcoords="offset points",
                xytext=(5, 5),
                fontsize=8,
            )
        if min(p["energy_mj"] for p in points) > 0:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1-2-5 ticks, plain numbers
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        metric = primary_metric_name(task)
        ax.set_xlabel("test energy per example (mJ)")
        ax.set_ylabel(f"{metric} (%)" if metric == "test/acc" else metric)
        ax.set_title(f"{task}, profile {profile}: mean over seeds (n), bars: seed std")
        ax.grid(alpha=0.3)
        written.append(save(fig, out / f"acc_vs_energy_{profile}_{task}.png"))
    return written


# --------------------------------------------------------------------------- bench speedups


def newest_bench_per_device(bench_dir: Path) -> dict[str, dict]:
    """The newest readable bench JSON of each device (by its ``meta.created`` stamp)."""
    newest: dict[str, dict] = {}
    for path in sorted(bench_dir.glob("bench_*.json")):
        try:
            data = json.loads(path.read_text())
            device, created = data["meta"]["device"], data["meta"]["created"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            print(f"plots: skipped bench file {path}: not a lra_snn.cli.bench result ({type(err).__name__}: {err})")
            continue
        if device not in newest or created > newest[device]["meta"]["created"]:
            newest[device] = data
    return newest


def speedup_series(summary: dict, pass_name: str) -> dict[str, list[tuple[int, float]]]:
    """(L, sequential/parallel) points per neuron for one pass, lengths without a ratio left out."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for entry in summary["speedup_sequential_over_parallel"]:
        value = entry.get(pass_name)
        if value is not None and math.isfinite(value):
            series[entry["neuron"]].append((entry["length"], value))
    return {name: sorted(points) for name, points in series.items()}


def plot_bench_speedups(bench_dir: Path, out: Path) -> list[Path]:
    """One figure per device: a panel per pass, a line per neuron, log-log axes."""
    written = []
    for device, data in sorted(newest_bench_per_device(bench_dir).items()):
        fig, axes = plt.subplots(1, len(PASS_TITLES), figsize=(11, 4), sharey=True)
        drawn = 0
        for ax, (pass_name, title) in zip(axes, PASS_TITLES.items()):
            for name, points in speedup_series(data["summary"], pass_name).items():
                lengths, ratios = zip(*points)
                ax.plot(lengths, ratios, marker="o", label=name)
                drawn += 1
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length L")
            ax.set_title(title)
            ax.grid(alpha=0.3, which="both")
        axes[0].set_ylabel("speedup: sequential time / parallel time")
        if drawn == 0:
            plt.close(fig)
            print(f"plots: no bench speedup figure for {device}: the newest file has no timed pair")
            continue
        axes[-1].legend(fontsize=8)
        meta = data["meta"]
        fig.suptitle(
            f"{meta.get('device_name', device)}, B={meta.get('batch')}, D={meta.get('d_model')}, "
            f"{meta.get('dtype')} ({meta['created']})",
            fontsize=9,
        )
        written.append(save(fig, out / f"bench_speedup_{device}.png"))
    return written


# --------------------------------------------------------------------------- training curves


def read_metric_log(path: Path) -> dict[str, list[tuple[int, float]]]:
    """(step, value) points per column of a Lightning CSV log; empty cells are skipped."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            step = row.get("step")
            if not step:
                continue
            for name, value in row.items():
                if name not in ("step", "epoch") and value:
                    series[name].append((int(step), float(value)))
    return series


def metric_log_of(run_path: Path) -> Path | None:
    """The CSV log of the run whose result file is ``run_path`` (from its recorded run_dir)."""
    config = json.loads(run_path.read_text()).get("config") or {}
    run_dir = (config.get("paths") or {}).get("run_dir")
    return None if run_dir is None else Path(run_dir) / "logs" / "metrics.csv"


def plot_training_curves(groups: dict[tuple[str, str, str], Group], out: Path) -> list[Path]:
    """One figure per cell (profile, task, model, config) with a CSV log: panels of CURVE_PANELS."""
    written = []
    for (profile, model, task), group in sorted(groups.items()):
        logs = {}
        for run in group.runs:
            log_path = metric_log_of(run.path)
            if log_path is not None and log_path.exists():
                logs[run.seed] = read_metric_log(log_path)
        if not logs:
            print(f"plots: no training curves for {profile}/{task}/{model}: no CSV log (logger=csv) found")
            continue
        fig, axes = plt.subplots(1, len(CURVE_PANELS), figsize=(13, 3.6))
        for ax, (column, title) in zip(axes, CURVE_PANELS):
            for seed, series in sorted(logs.items()):
                if series.get(column):
                    steps, values = zip(*series[column])
                    ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=f"seed {seed}")
            ax.set_xlabel("optimizer step")
            ax.set_title(title)
            ax.grid(alpha=0.3)
        axes[-1].legend(fontsize=8)
        fig.suptitle(f"{task} / {model} / profile {profile} / config {group.config_hash}", fontsize=9)
        name = f"{profile}_{task}_{model}_{group.config_hash}.png"
        written.append(save(fig, out / "curves" / name))
    return written


# --------------------------------------------------------------------------- entry point


def save(fig, path: Path) -> Path:
    """Write ``fig`` as PNG at ``path`` (folders created) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def draw_all(results: Path, bench: Path, out: Path) -> list[Path]:
    """Every figure the available data allows; prints why a kind is skipped."""
    written = []
    runs, problems = load_runs(results) if results.is_dir() else ([], [])
    for problem in problems:
        print(f"plots: {problem}")
    groups, _ = group_runs(runs) if runs else ({}, [])
    if not groups:
        print(f"plots: no accuracy-vs-energy or training-curve figures: no result.json under {results}")
    else:
        energy = plot_accuracy_vs_energy(groups, out)
        if not energy:
            print(
                "plots: no accuracy-vs-energy figure: no completed run records test/energy_mj "
                "(the EnergyMeter callback logs it)"
            )
        written += energy + plot_training_curves(groups, out)
    if not bench.is_dir() or not any(bench.glob("bench_*.json")):
        print(f"plots: no bench speedup figure: no bench_*.json under {bench} (make bench writes them)")
    else:
        written += plot_bench_speedups(bench, out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lra_snn.cli.plots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results/reference-runs"), help="folder of result.json files")
    parser.add_argument("--bench", type=Path, default=Path("results/bench"), help="folder of bench_*.json files")
    parser.add_argument("--out", type=Path, default=Path("results/figures"), help="folder for the PNG files")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    written = draw_all(args.results, args.bench, args.out)
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
