"""Figures of the benchmark from result files alone: accuracy vs energy per task, neuron speedup vs
sequence length, and training curves per cell (PNG, matplotlib). Everything they read travels with a
clone: ``result.json``, the ``metrics.csv`` it names (``lra_snn.results.curves``) and the bench JSON.

- ``acc_vs_energy_<profile>_<task>.png``: one marker per model at the mean over seeds of the test
  accuracy (%) at the best-validation checkpoint and of the estimated test energy per example
  (``EnergyMeter``); bars span the seeds' min to max, and each seed is a small dot. The energy unit
  (uJ or mJ) follows the largest value and is named on the axis. Dotted line: chance (1 / classes);
  dashed line: the test split's majority-class rate. The runs drawn are those the leaderboard
  counts for each (profile, model, task) (``lra_snn.results.board.group_runs``, one run per seed).
- ``bench_speedup_<device>.png``: sequential / parallel time ratio per neuron against L, forward
  and forward + backward, from the newest ``lra_snn.cli.bench`` JSON of each device.
- ``curves/<profile>_<task>_<model>_<hash>.png``: loss (training and validation) and validation
  accuracy (%) against epochs, the mean over seeds as a line and their min-max as a band. The
  evaluated checkpoint's re-validation (star) and test (diamond) are drawn per seed at the epoch of
  that checkpoint, not as an extra epoch; chance and majority lines as above.

A figure, or a seed of one, without its data is skipped with a printed reason.

    python -m lra_snn.cli.plots [--results results/reference-runs] [--bench results/bench] [--out results/figures]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from lra_snn.results.board import Group, group_runs
from lra_snn.results.curves import MetricsFileError, Row, metrics_path, read_metrics_file, seed_band
from lra_snn.results.runs import Run, load_runs, primary_metric_name
from lra_snn.results.schema import ResultFileError, read_record

PASS_TITLES = {"forward": "forward (inference)", "forward_backward": "forward + backward (training)"}
BAND_LABEL = "mean over seeds, band: min-max"
# matplotlib rc settings while drawing
STYLE: dict[Any, Any] = {"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}


# --------------------------------------------------------------------------- what a figure reads of a run


@dataclass(frozen=True)
class RunDetail:
    """A counted run with what the figures need beyond ``Run``: chance rate (%) and its curves (or why not)."""

    run: Run
    chance_rate: float | None
    rows: list[Row] | None
    skipped: str  # why ``rows`` is None


def run_detail(run: Run) -> RunDetail:
    """The chance rate and metrics file of ``run``, read from its result file."""
    try:
        record = read_record(run.path)
    except ResultFileError as err:  # load_runs read it a moment ago: changed since
        return RunDetail(run, None, None, f"{run.path}: {err}")
    chance = record.metrics.get("test/chance_rate")
    chance_pct = chance * 100.0 if chance is not None and math.isfinite(chance) else None
    try:
        rows = read_metrics_file(metrics_path(run.path, record.extra.get("metrics_file")))
    except MetricsFileError as err:
        return RunDetail(run, chance_pct, None, str(err))
    return RunDetail(run, chance_pct, rows, "")


def reference_rates(details: Iterable[RunDetail]) -> dict[str, float]:
    """Chance and majority rate (%) over ``details``' completed runs, each where some run records it."""
    details = list(details)
    chance = [d.chance_rate for d in details if d.chance_rate is not None]
    majority = [d.run.majority_rate for d in details if d.run.majority_rate is not None]
    rates = {}
    if chance:
        rates["chance"] = sum(chance) / len(chance)
    if majority:
        rates["majority"] = sum(majority) / len(majority)
    return rates


def draw_reference_lines(ax: Axes, rates: dict[str, float]) -> None:
    """Horizontal chance and majority lines, labelled with their value for the legend."""
    if "chance" in rates:
        ax.axhline(
            rates["chance"], color="0.35", ls=":", lw=1.2, label=f"chance (1 / classes): {rates['chance']:.1f} %"
        )
    if "majority" in rates:
        ax.axhline(
            rates["majority"],
            color="0.35",
            ls="--",
            lw=1.0,
            label=f"majority class (test split): {rates['majority']:.1f} %",
        )


def note_missing_rates(label: str, rates: dict[str, float]) -> None:
    """Print which reference line a figure lacks, and why."""
    if "chance" not in rates:
        print(f"plots: {label}: no chance line: no run records test/chance_rate (runs written before it; rerun)")
    if "majority" not in rates:
        print(f"plots: {label}: no majority line: no run records test/majority_rate")


MARKERS = ("o", "s", "^", "D", "v")


def model_styles(groups: Iterable[Group]) -> dict[str, tuple[str, str]]:
    """One (colour, marker) per model name, the same in every figure of a drawing: the ten colours of
    ``tab10``, then the same colours again with the next marker shape, so no two models look alike."""
    names = sorted({group.model for group in groups})
    palette = plt.get_cmap("tab10")
    if len(names) > palette.N * len(MARKERS):
        raise ValueError(f"{len(names)} models in one drawing: at most {palette.N * len(MARKERS)} have distinct styles")
    return {
        name: (matplotlib.colors.to_hex(palette(i % palette.N)), MARKERS[i // palette.N])
        for i, name in enumerate(names)
    }


def legend_below(fig: Figure, axes: list[Axes], columns: int) -> None:
    """One legend for the figure, under the axes (never over the data): the distinct labels of ``axes``."""
    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=columns, frameon=False)


# --------------------------------------------------------------------------- accuracy vs energy


def energy_unit(values_mj: Iterable[float]) -> tuple[float, str]:
    """(factor from mJ, unit) for energies: uJ while the largest is below 1 mJ, else mJ."""
    return (1.0, "mJ") if max(values_mj) >= 1.0 else (1000.0, "uJ")


@dataclass(frozen=True)
class EnergyPoint:
    """One model's seeds on one task: (metric, energy in mJ) per seed and their means."""

    model: str
    seeds: tuple[tuple[float, float], ...]

    @property
    def metric(self) -> float:
        return sum(m for m, _ in self.seeds) / len(self.seeds)

    @property
    def energy_mj(self) -> float:
        return sum(e for _, e in self.seeds) / len(self.seeds)


def spread(center: float, values: list[float]) -> list[list[float]]:
    """Error-bar lengths from ``center`` down to min(values) and up to max(values) (never below 0: rounding)."""
    return [[max(center - min(values), 0.0)], [max(max(values) - center, 0.0)]]


def energy_point(group: Group) -> EnergyPoint | None:
    """The completed seeds of ``group`` that have both metric and energy; None when none has."""
    seeds = tuple(
        (r.metric, r.energy_mj)
        for r in group.with_status("completed")
        if r.metric is not None and r.energy_mj is not None
    )
    return EnergyPoint(group.model, seeds) if seeds else None


def plot_accuracy_vs_energy(groups: dict[tuple[str, str, str], Group], out: Path) -> list[Path]:
    """One figure per (profile, task) that has at least one model with energy numbers."""
    styles = model_styles(groups.values())
    by_panel: dict[tuple[str, str], list[tuple[Group, EnergyPoint]]] = defaultdict(list)
    for (profile, _model, task), group in sorted(groups.items()):
        point = energy_point(group)
        if point is not None:
            by_panel[(profile, task)].append((group, point))
    return [
        save(accuracy_energy_figure(profile, task, entries, styles), out / f"acc_vs_energy_{profile}_{task}.png")
        for (profile, task), entries in sorted(by_panel.items())
    ]


def accuracy_energy_figure(
    profile: str, task: str, entries: list[tuple[Group, EnergyPoint]], styles: dict[str, tuple[str, str]]
) -> Figure:
    """The accuracy (or perplexity) vs energy figure of one (profile, task) (module docstring)."""
    points = [point for _, point in entries]
    factor, unit = energy_unit(e for p in points for _, e in p.seeds)
    is_accuracy = primary_metric_name(task) == "test/acc"
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for point in sorted(points, key=lambda p: -p.metric):
        metrics = [m for m, _ in point.seeds]
        energies = [e * factor for _, e in point.seeds]
        x, y = point.energy_mj * factor, point.metric
        color, marker = styles[point.model]
        ax.errorbar(
            x,
            y,
            xerr=spread(x, energies),
            yerr=spread(y, metrics),
            fmt=marker,
            ms=7,
            capsize=3,
            color=color,
            label=f"{point.model} ({len(point.seeds)} seeds)",
        )
        ax.scatter(energies, metrics, s=10, color=color, marker=marker, alpha=0.5, zorder=3)
    if is_accuracy:
        rates = reference_rates(run_detail(r) for group, _ in entries for r in group.with_status("completed"))
        draw_reference_lines(ax, rates)
        note_missing_rates(f"{profile}/{task}", rates)
    if min(e for p in points for _, e in p.seeds) > 0:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1-2-5 ticks, plain numbers
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"estimated test energy per example ({unit})")
    ax.set_ylabel("test accuracy (%)" if is_accuracy else "test perplexity (lower is better)")
    ax.set_title(f"{task}, profile {profile}: marker = mean over seeds, bars = min-max, dots = seeds")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    return fig


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
    """One figure per device: a panel per pass, a line per neuron, log-log axes, the legend below."""
    written = []
    for device, data in sorted(newest_bench_per_device(bench_dir).items()):
        fig, axes = plt.subplots(1, len(PASS_TITLES), figsize=(11, 4.4), sharey=True)
        drawn = 0
        for ax, (pass_name, title) in zip(axes, PASS_TITLES.items()):
            for name, points in speedup_series(data["summary"], pass_name).items():
                lengths, ratios = zip(*points)
                ax.plot(lengths, ratios, marker="o", label=name)
                drawn += 1
            ax.axhline(1.0, color="grey", lw=0.8, ls="--", label="1 = no speedup")
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
        meta = data["meta"]
        fig.suptitle(
            f"{meta.get('device_name', device)}, B={meta.get('batch')}, D={meta.get('d_model')}, "
            f"{meta.get('dtype')} ({meta['created']})"
        )
        legend_below(fig, list(axes), columns=8)
        written.append(save(fig, out / f"bench_speedup_{device}.png"))
    return written


# --------------------------------------------------------------------------- training curves


def draw_band(ax: Axes, rows: dict[int, list[Row]], stage: str, column: str, scale: float, label: str, color: str):
    """Mean line and min-max band over seeds of one column; returns whether anything was drawn."""
    band = seed_band(rows, stage, column)
    if not band:
        return False
    x = [p.epoch for p in band]
    ax.plot(x, [p.mean * scale for p in band], color=color, marker="." if len(x) < 30 else None, label=label)
    ax.fill_between(x, [p.low * scale for p in band], [p.high * scale for p in band], color=color, alpha=0.2, lw=0)
    return True


def draw_final_points(ax: Axes, rows: dict[int, list[Row]], column: str, scale: float) -> None:
    """Per seed: the re-validation (star) and test (diamond) of the evaluated checkpoint, at its epoch."""
    marks = (  # stage, marker, size, colour, what; the star above the diamond where both fall on one point
        ("test", "D", 30, "tab:red", "test"),
        ("final_val", "*", 80, "tab:green", "re-validation"),
    )
    for order, (stage, marker, size, color, what) in enumerate(marks):
        points = [
            (r.epoch, r.values[column] * scale)
            for seed_rows in rows.values()
            for r in seed_rows
            if r.stage == stage and column in r.values
        ]
        if points:
            x, y = zip(*points)
            label = f"{what} of the evaluated checkpoint (one mark per seed)"
            ax.scatter(
                x,
                y,
                marker=marker,
                s=size,
                color=color,
                edgecolor="black",
                lw=0.5,
                zorder=4 + order,
                label=label,
            )


def curves_figure(group: Group, details: list[RunDetail]) -> Figure | None:
    """The curves figure of one cell from the seeds that have a metrics file; None (reason printed) if none has."""
    label = f"{group.profile}/{group.task}/{group.model}"
    rows = {d.run.seed: d.rows for d in details if d.rows is not None}
    missing = [d for d in details if d.rows is None]
    if not rows:
        print(
            f"plots: no training curves for {label}: none of its {len(details)} seed(s) has one ({missing[0].skipped})"
        )
        return None
    for d in missing:
        print(f"plots: {label} seed {d.run.seed} left out of the training curves: {d.skipped}")
    is_accuracy = primary_metric_name(group.task) == "test/acc"
    column, scale = ("acc", 100.0) if is_accuracy else ("ppl", 1.0)
    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(11, 4.4))
    draw_band(loss_ax, rows, "train", "loss", 1.0, f"training loss ({BAND_LABEL})", "tab:blue")
    draw_band(loss_ax, rows, "val", "loss", 1.0, f"validation loss ({BAND_LABEL})", "tab:orange")
    name = "accuracy" if is_accuracy else "perplexity"
    draw_band(metric_ax, rows, "val", column, scale, f"validation {name} ({BAND_LABEL})", "tab:purple")
    draw_final_points(metric_ax, rows, column, scale)
    if is_accuracy:
        rates = reference_rates(d for d in details if d.rows is not None)
        draw_reference_lines(metric_ax, rates)
        note_missing_rates(label, rates)
    loss_ax.set_ylabel("cross-entropy loss")
    metric_ax.set_ylabel("accuracy (%)" if is_accuracy else "perplexity (lower is better)")
    for ax, title in (
        (loss_ax, "loss"),
        (metric_ax, f"{name}: validation per epoch, evaluated checkpoint"),
    ):
        ax.set_xlabel("epochs of training")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(left=0)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    seeds = ", ".join(str(seed) for seed in sorted(rows))
    fig.suptitle(f"{group.task} / {group.model} / profile {group.profile} / config {group.config_hash}: seeds {seeds}")
    legend_below(fig, [loss_ax, metric_ax], columns=2)
    return fig


def plot_training_curves(groups: dict[tuple[str, str, str], Group], out: Path) -> list[Path]:
    """One figure per cell (profile, task, model, config) whose completed seeds have metrics files."""
    written = []
    for _key, group in sorted(groups.items()):
        details = [run_detail(run) for run in group.with_status("completed")]
        if not details:
            print(f"plots: no training curves for {group.profile}/{group.task}/{group.model}: no completed run")
        fig = curves_figure(group, details) if details else None
        if fig is not None:
            name = f"{group.profile}_{group.task}_{group.model}_{group.config_hash}.png"
            written.append(save(fig, out / "curves" / name))
    return written


# --------------------------------------------------------------------------- entry point


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG at ``path`` (folders created), grown to hold a legend beside or below it, and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def draw_all(results: Path, bench: Path, out: Path) -> list[Path]:
    """Every figure the available data allows (in STYLE); prints why a kind is skipped."""
    with plt.rc_context(STYLE):
        return _draw_all(results, bench, out)


def _draw_all(results: Path, bench: Path, out: Path) -> list[Path]:
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
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("results/reference-runs"),
        help="folder searched for result.json files (e.g. results/reference-runs or results/local/runs)",
    )
    parser.add_argument("--bench", type=Path, default=Path("results/bench"), help="folder of bench_*.json files")
    parser.add_argument("--out", type=Path, default=Path("results/figures"), help="folder for the PNG files")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    written = draw_all(args.results, args.bench, args.out)
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
