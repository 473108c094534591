"""``acc_vs_energy_<profile>_<task>``: test accuracy (%) against the estimated test energy per example.

One marker per model at the mean over its seeds, in the model's style (``figure_style``) and labelled
with its name beside it (labels pushed apart where they would collide, ``figure_labels``). On the
accuracy axis: the 95 % Wilson interval of the mean accuracy over the cell's test examples (thin bar
with caps, where the test-set size is known, ``figure_stats``), the seeds' range (min to max, a wide
pale bar, where there are several seeds) and each seed as a small dot; on the energy axis, the seeds'
range. Chance (dotted) and majority-class (dashed) lines; the band at or below the majority rate is
hatched, and a model whose mean falls in it did not learn (``figure_stats.did_not_learn``): its marker
is pale and its label says so. The energy unit (uJ or mJ) follows the largest value. Language
modelling shows test perplexity instead (lower is better), without reference lines.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from lra_snn.cli.figure_cells import LeftOut, RunDetail, cell_name, reference_rates
from lra_snn.cli.figure_common import (
    HATCH,
    HATCH_COLOUR,
    draw_reference_lines,
    legend_below,
    missing_rates,
    with_reference_entries,
)
from lra_snn.cli.figure_labels import Box, place_labels
from lra_snn.cli.figure_stats import count_test_examples, did_not_learn, seeds_label, wilson_interval
from lra_snn.cli.figure_style import drawing_order, model_style
from lra_snn.results.board import Group
from lra_snn.results.render import energy_unit
from lra_snn.results.runs import primary_metric_name

LABEL_OFFSET = 6.0  # points between a marker and its label
LABEL_SIZE = 7.5
MARKER_SIZE = 6.0  # points
CAP_SIZE = 2.5  # points: half the width of an interval's caps
SEED_BAR_WIDTH = 3.5  # points
NOT_LEARNED_ALPHA = 0.6
LABEL_BOX = {"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.9}
BASELINE_LABEL = "open marker: S4 family baseline"


def figure_stem(profile: str, task: str) -> str:
    """The basename of the figure of one (profile, task)."""
    return f"acc_vs_energy_{profile}_{task}"


@dataclass(frozen=True)
class EnergyPoint:
    """One cell: (metric, energy in mJ) per seed, its test-set size (None: unknown), majority rate (%)."""

    model: str
    seeds: tuple[tuple[float, float], ...]
    n_test: int | None = None
    majority: float | None = None

    @property
    def metric(self) -> float:
        """The mean over seeds of the ranked metric (accuracy in %, or perplexity)."""
        return statistics.fmean(m for m, _ in self.seeds)

    @property
    def energy_mj(self) -> float:
        """The mean over seeds of the energy per test example (mJ)."""
        return statistics.fmean(e for _, e in self.seeds)

    def wilson(self) -> tuple[float, float] | None:
        """The 95 % Wilson interval (%) of the mean accuracy over the test examples; None for an unknown count."""
        if self.n_test is None:
            return None
        low, high = wilson_interval(self.metric / 100.0, self.n_test)
        return 100.0 * low, 100.0 * high

    @property
    def learned(self) -> bool:
        """False when the mean accuracy is not above the majority rate (unknown majority: True)."""
        return self.majority is None or not did_not_learn(self.metric, self.majority)


def energy_point(group: Group) -> tuple[EnergyPoint | None, list[LeftOut]]:
    """The completed seeds of ``group`` that record energy, and the seeds (or the cell) left out for want of it."""
    stem = figure_stem(group.profile, group.task)
    completed = group.with_status("completed")
    with_energy = [r for r in completed if r.metric is not None and r.energy_mj is not None]
    if not with_energy:
        why = "no completed seed records test/energy_mj (the EnergyMeter callback logs it)"
        return None, [LeftOut(stem, cell_name(group), why)]
    left_out = [
        LeftOut(stem, cell_name(group, r.seed), "records no test/energy_mj") for r in completed if r not in with_energy
    ]
    counts = {count_test_examples(r.config) for r in with_energy}
    majorities = [r.majority_rate for r in with_energy if r.majority_rate is not None]
    point = EnergyPoint(
        group.model,
        tuple((r.metric, r.energy_mj) for r in with_energy if r.metric is not None and r.energy_mj is not None),
        counts.pop() if len(counts) == 1 else None,
        statistics.fmean(majorities) if majorities else None,
    )
    return point, left_out


def _range(center: float, values: list[float]) -> list[list[float]]:
    """Error-bar lengths from ``center`` down to min(values) and up to max(values) (never below 0: rounding)."""
    return [[max(center - min(values), 0.0)], [max(max(values) - center, 0.0)]]


def _y_limits(points: list[EnergyPoint], rates: dict[str, float]) -> tuple[float, float]:
    """The accuracy axis: every interval, seed and reference line inside, a margin around them, within [0, 100]."""
    values = [m for p in points for m, _ in p.seeds] + list(rates.values())
    values += [bound for p in points if (interval := p.wilson()) is not None for bound in interval]
    low, high = min(values), max(values)
    margin = 0.06 * max(high - low, 1.0)
    return max(0.0, low - margin), min(100.0, high + margin)


def _draw_point(ax: Axes, point: EnergyPoint, factor: float, is_accuracy: bool) -> None:
    """One cell: its Wilson interval, seed ranges and seed dots, and its marker (pale when it did not learn)."""
    style = model_style(point.model)
    x, y = point.energy_mj * factor, point.metric
    metrics = [m for m, _ in point.seeds]
    energies = [e * factor for _, e in point.seeds]
    alpha = 1.0 if point.learned else NOT_LEARNED_ALPHA
    interval = point.wilson() if is_accuracy else None
    if interval is not None:
        ax.errorbar(
            x,
            y,
            yerr=[[y - interval[0]], [interval[1] - y]],
            fmt="none",
            ecolor=style.colour,
            elinewidth=0.9,
            capsize=CAP_SIZE,
            alpha=alpha,
            zorder=3,
        )
    if len(point.seeds) > 1:
        ax.errorbar(
            x,
            y,
            xerr=_range(x, energies),
            yerr=_range(y, metrics),
            fmt="none",
            ecolor=style.colour,
            elinewidth=SEED_BAR_WIDTH,
            alpha=0.35 * alpha,
            zorder=2,
        )
        ax.scatter(energies, metrics, s=7, color=style.colour, alpha=0.6 * alpha, lw=0, zorder=3)
    ax.plot(
        [x],
        [y],
        ls="none",
        color=style.colour,
        marker=style.marker,
        ms=MARKER_SIZE,
        mfc=style.face,
        mec=style.colour,
        mew=1.3,
        alpha=alpha,
        zorder=4,
    )


def _label_text(point: EnergyPoint, show_seeds: bool) -> str:
    """The direct label: the model, its seed count where cells differ in it, and "did not learn" where so."""
    text = point.model + (f" ({seeds_label(len(point.seeds))})" if show_seeds else "")
    return text if point.learned else f"{text}: did not learn"


def _obstacles(ax: Axes, point: EnergyPoint, factor: float, is_accuracy: bool) -> list[Box]:
    """The boxes (pixels) a label must not cover: the point's marker and its accuracy bars (labels may cross
    the thin energy-range bars)."""
    fig = ax.get_figure()
    assert isinstance(fig, Figure)
    pixels = fig.dpi / 72.0
    x, y = point.energy_mj * factor, point.metric
    px, py = ax.transData.transform((x, y))
    radius, cap = (MARKER_SIZE / 2 + 1.0) * pixels, CAP_SIZE * pixels
    metrics = [m for m, _ in point.seeds]
    interval = point.wilson() if is_accuracy else None
    low, high = min([*metrics, *(interval or ())]), max([*metrics, *(interval or ())])
    bottom, top = (ax.transData.transform((x, value))[1] for value in (low, high))
    return [(px - radius, py - radius, px + radius, py + radius), (px - cap, bottom, px + cap, top)]


def draw_labels(ax: Axes, points: list[EnergyPoint], factor: float, is_accuracy: bool, texts: list[str]) -> None:
    """Write each point's text beside it in its model's colour, off the other labels and points
    (``figure_labels.place_labels``); a label moved off its point gets a thin leader line to it."""
    fig = ax.get_figure()
    assert isinstance(fig, Figure)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    pixels = fig.dpi / 72.0
    anchors = [(point.energy_mj * factor, point.metric) for point in points]
    candidates = []
    for anchor, text in zip(anchors, texts):
        probe = ax.annotate(
            text,
            anchor,
            xytext=(LABEL_OFFSET, 0.0),
            textcoords="offset points",
            va="center",
            fontsize=LABEL_SIZE,
            bbox=LABEL_BOX,
        )
        x0, y0, x1, y1 = probe.get_window_extent(renderer).extents
        probe.remove()
        px = ax.transData.transform(anchor)[0]
        candidates.append(((x0, y0, x1, y1), (2 * px - x1, y0, 2 * px - x0, y1)))  # right of the point, and left
    obstacles = [box for point in points for box in _obstacles(ax, point, factor, is_accuracy)]
    bounds = ax.get_window_extent(renderer).extents
    placed = place_labels(candidates, obstacles, (bounds[0], bounds[1], bounds[2], bounds[3]), gap=1.5)
    for point, anchor, text, (side, dx, dy) in zip(points, anchors, texts, placed):
        colour = model_style(point.model).colour
        moved = abs(dx) > 2.0 or abs(dy) > 2.0
        ax.annotate(
            text,
            anchor,
            xytext=(side * LABEL_OFFSET + dx / pixels, dy / pixels),
            textcoords="offset points",
            va="center",
            ha="left" if side > 0 else "right",
            fontsize=LABEL_SIZE,
            color=colour,
            bbox=LABEL_BOX,
            arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.5, "alpha": 0.7, "shrinkA": 0, "shrinkB": 3}
            if moved
            else None,
            annotation_clip=False,
            zorder=5,
        )


def _legend_entries(ax: Axes, points: list[EnergyPoint], is_accuracy: bool, hatched: bool) -> list[Artist]:
    """What the marks mean: the marker (mean over how many seeds), open markers, the interval, the seed range,
    the reference lines and the hatching, each only where drawn."""
    counts = sorted({len(p.seeds) for p in points})
    sizes = sorted({p.n_test for p in points if p.n_test is not None})
    what = f"mean over {seeds_label(counts[0])}" if counts != [1] else "accuracy of the one seed"
    if len(counts) > 1:
        what = "mean over the cell's seeds (count beside its name)"
    entries: list[Artist] = [
        Line2D([], [], ls="none", marker="o", color="0.35", ms=6, label=f"marker: {what}"),
    ]
    if any(model_style(p.model).baseline for p in points):
        entries.append(
            Line2D([], [], ls="none", marker="o", mfc="none", mec="0.35", mew=1.3, ms=6, label=BASELINE_LABEL)
        )
    if is_accuracy and sizes:
        n = f"n = {sizes[0]}" if len(sizes) == 1 else "n = " + " / ".join(str(s) for s in sizes)
        entries.append(
            Line2D(
                [],
                [],
                color="0.35",
                lw=0.9,
                marker="_",
                ms=7,
                label=f"95 % Wilson interval over the test examples ({n})",
            )
        )
    if counts[-1] > 1:
        entries.append(Line2D([], [], color="0.35", lw=3.5, alpha=0.35, label="seed range (min to max)"))
        entries.append(Line2D([], [], ls="none", marker="o", ms=3, color="0.35", alpha=0.6, label="one seed"))
    return with_reference_entries(entries, ax, hatched)


def accuracy_energy_figure(
    profile: str, task: str, points: list[EnergyPoint], details: list[RunDetail]
) -> tuple[Figure, list[str]]:
    """The figure of one (profile, task) (module docstring), and notes on reference lines it lacks."""
    points = sorted(points, key=lambda p: drawing_order(p.model))
    unit, factor = energy_unit([e for p in points for _, e in p.seeds])  # the board's unit rule
    is_accuracy = primary_metric_name(task) == "test/acc"
    rates = reference_rates(details) if is_accuracy else {}
    fig, ax = plt.subplots(figsize=(6.6, 4.4))
    for point in points:
        _draw_point(ax, point, factor, is_accuracy)
    energies = [e * factor for p in points for _, e in p.seeds]
    if min(energies) > 0:
        ax.set_xscale("log")
        ax.set_xlim(min(energies) / 1.35, max(energies) * 1.35)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1-2-5 ticks, plain numbers
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    hatched = False
    if is_accuracy:
        draw_reference_lines(ax, rates)
        low, high = _y_limits(points, rates)
        ax.set_ylim(low, high)
        if "majority" in rates and rates["majority"] > low:
            ax.axhspan(low, rates["majority"], facecolor="none", edgecolor=HATCH_COLOUR, hatch=HATCH, lw=0, zorder=0)
            hatched = True
    ax.set_xlabel(f"estimated test energy per example ({unit}, log scale)")
    ax.set_ylabel("test accuracy (%)" if is_accuracy else "test perplexity (lower is better)")
    ax.set_title(f"{task}, {profile} profile: test accuracy against energy")
    ax.grid(alpha=0.25, lw=0.6)
    fig.tight_layout()
    show_seeds = len({len(p.seeds) for p in points}) > 1
    draw_labels(ax, points, factor, is_accuracy, [_label_text(p, show_seeds) for p in points])
    legend_below(fig, _legend_entries(ax, points, is_accuracy, hatched), columns=2)
    return fig, missing_rates(figure_stem(profile, task), rates) if is_accuracy else []
