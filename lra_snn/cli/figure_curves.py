"""``curves_<profile>_<task>``: the training curves of every model on one task, one panel pair per model.

Small multiples with shared axes: per model (baselines first, ``figure_style.drawing_order``), the
validation accuracy (%) per epoch on top, the mean over seeds as a line in the model's colour and
their min-max as a band, with each seed's test accuracy of the evaluated checkpoint (diamond) at that
checkpoint's epoch; below it, the training loss (grey) and the validation loss (the model's colour),
each with its seed band. Every accuracy panel has the chance (dotted) and majority-class (dashed)
lines; a model that did not learn (``figure_stats.did_not_learn`` on its mean test accuracy) has its
accuracy panel hatched and says so. Each panel's title names the model and how many seeds it shows.
Language modelling shows validation perplexity instead of accuracy, without reference lines.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from lra_snn.cli.figure_cells import LeftOut, RunDetail, cell_name, reference_rates
from lra_snn.cli.figure_common import (
    HATCH,
    HATCH_COLOUR,
    draw_reference_lines,
    legend_below,
    missing_rates,
    with_reference_entries,
)
from lra_snn.cli.figure_stats import did_not_learn, seeds_label
from lra_snn.cli.figure_style import drawing_order, model_style
from lra_snn.results.board import Group
from lra_snn.results.curves import Row, seed_band
from lra_snn.results.runs import primary_metric_name

COLUMNS = 4
TRAIN_ALPHA = 0.5  # the training loss: a thin pale line in the model's colour
TEST_MARK = "D"


def figure_stem(profile: str, task: str) -> str:
    """The basename of the figure of one (profile, task)."""
    return f"curves_{profile}_{task}"


@dataclass(frozen=True)
class CurvePanel:
    """One model's curves: the rows of each seed that has a metrics file, and whether the cell learned."""

    group: Group
    rows: dict[int, list[Row]]
    learned: bool


def curve_panel(group: Group, details: list[RunDetail]) -> tuple[CurvePanel | None, list[LeftOut]]:
    """The panel of one cell from its seeds with a metrics file, and the seeds (or the cell) left out."""
    stem = figure_stem(group.profile, group.task)
    rows = {d.run.seed: d.rows for d in details if d.rows is not None}
    missing = [d for d in details if d.rows is None]
    if not rows:
        return None, [LeftOut(stem, cell_name(group), f"no seed has a metrics file ({missing[0].skipped})")]
    left_out = [LeftOut(stem, cell_name(group, d.run.seed), d.skipped) for d in missing]
    majorities = [d.run.majority_rate for d in details if d.run.majority_rate is not None]
    learned = not (
        group.values and majorities and did_not_learn(statistics.fmean(group.values), statistics.fmean(majorities))
    )
    return CurvePanel(group, rows, learned), left_out


def draw_band(ax: Axes, rows: dict[int, list[Row]], stage: str, column: str, scale: float, **line: Any) -> None:
    """Mean line (matplotlib ``line`` settings) and min-max band over seeds of one column, epochs on x."""
    band = seed_band(rows, stage, column)
    if not band:
        return
    x = [p.epoch for p in band]
    ax.plot(x, [p.mean * scale for p in band], **line)
    low, high = [p.low * scale for p in band], [p.high * scale for p in band]
    ax.fill_between(x, low, high, color=line["color"], alpha=0.2 * line.get("alpha", 1.0), lw=0)


def draw_test_marks(ax: Axes, rows: dict[int, list[Row]], column: str, scale: float, colour: str) -> None:
    """Per seed: the test result of the evaluated checkpoint, at that checkpoint's epoch."""
    points = [
        (r.epoch, r.values[column] * scale)
        for seed_rows in rows.values()
        for r in seed_rows
        if r.stage == "test" and column in r.values
    ]
    if points:
        x, y = zip(*points)
        ax.scatter(x, y, marker=TEST_MARK, s=16, color=colour, edgecolor="white", lw=0.5, zorder=4)


def hatch_panel(ax: Axes) -> None:
    """Hatch the whole panel and write "did not learn" in its corner."""
    ax.add_patch(
        Rectangle(
            (0, 0), 1, 1, transform=ax.transAxes, facecolor="none", edgecolor=HATCH_COLOUR, hatch=HATCH, lw=0, zorder=0
        )
    )
    ax.text(0.97, 0.94, "did not learn", transform=ax.transAxes, ha="right", va="top", style="italic", fontsize=7.5)


def _legend_entries(accuracy_ax: Axes, is_accuracy: bool, several_seeds: bool, hatched: bool) -> list[Artist]:
    """What the lines and marks mean (seed bands only where a panel has several seeds), the reference lines
    and the hatching where drawn."""
    name = "accuracy" if is_accuracy else "perplexity"
    spread = ": mean over seeds, band min to max" if several_seeds else " of the one seed"
    proxy: dict[str, Any] = {"color": "0.35", "lw": 1.2, "marker": "o", "ms": 3}
    entries: list[Artist] = [
        Line2D([], [], **proxy, label=f"validation {name}{spread} (upper panels)"),
        Line2D(
            [],
            [],
            ls="none",
            marker=TEST_MARK,
            ms=4.5,
            color="0.35",
            label=f"test {name} of the evaluated checkpoint" + (" (one per seed)" if several_seeds else ""),
        ),
        Line2D([], [], **proxy, label="validation loss (lower panels)"),
        Line2D([], [], color="0.35", lw=0.7, alpha=TRAIN_ALPHA, label="training loss (lower panels)"),
    ]
    return with_reference_entries(entries, accuracy_ax, hatched)


def curves_figure(
    profile: str, task: str, panels: list[CurvePanel], details: list[RunDetail]
) -> tuple[Figure, list[str]]:
    """The small-multiples figure of one (profile, task) (module docstring), and notes on reference lines it lacks."""
    panels = sorted(panels, key=lambda p: drawing_order(p.group.model))
    is_accuracy = primary_metric_name(task) == "test/acc"
    column, scale = ("acc", 100.0) if is_accuracy else ("ppl", 1.0)
    rates = reference_rates(details) if is_accuracy else {}
    columns = min(COLUMNS, len(panels))
    grid_rows = math.ceil(len(panels) / columns)
    fig = plt.figure(figsize=(1.95 * columns + 0.7, 2.55 * grid_rows + 0.5))
    outer = fig.add_gridspec(grid_rows, columns, hspace=0.3, wspace=0.1)
    first: dict[str, Axes] = {}
    accuracy_axes = []
    for index, panel in enumerate(panels):
        inner = outer[index // columns, index % columns].subgridspec(2, 1, height_ratios=(1.6, 1.0), hspace=0.08)
        top = fig.add_subplot(inner[0], sharex=first.get("top"), sharey=first.get("top"))
        first.setdefault("top", top)
        bottom = fig.add_subplot(inner[1], sharex=first["top"], sharey=first.get("bottom"))
        first.setdefault("bottom", bottom)
        accuracy_axes.append(top)
        style = model_style(panel.group.model)
        validation = {"color": style.colour, "lw": 1.2, "marker": style.marker, "ms": 3.0, "mfc": style.face}
        draw_band(top, panel.rows, "val", column, scale, **validation)
        draw_test_marks(top, panel.rows, column, scale, style.colour)
        draw_reference_lines(top, rates)
        if not panel.learned:
            hatch_panel(top)
        draw_band(bottom, panel.rows, "train", "loss", 1.0, color=style.colour, lw=0.7, alpha=TRAIN_ALPHA)
        draw_band(bottom, panel.rows, "val", "loss", 1.0, **validation)
        top.set_title(f"{panel.group.model} ({seeds_label(len(panel.rows))})", color=style.colour, pad=3)
        top.tick_params(labelbottom=False)
        for ax in (top, bottom):
            ax.grid(alpha=0.25, lw=0.6)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if index % columns:
                ax.tick_params(labelleft=False)
        if index % columns == 0:
            top.set_ylabel("val. accuracy (%)" if is_accuracy else "val. perplexity")
            bottom.set_ylabel("loss")
        if index + columns >= len(panels):
            bottom.set_xlabel("epochs of training")
    first["top"].set_xlim(left=0)
    fig.suptitle(
        f"{task}, {profile} profile: validation {'accuracy' if is_accuracy else 'perplexity'} "
        "(top) and loss (bottom) per model",
        y=0.995,
    )
    fig.subplots_adjust(left=0.08, right=0.99, top=1 - 0.45 / fig.get_figheight(), bottom=0.45 / fig.get_figheight())
    hatched = not all(panel.learned for panel in panels)
    several_seeds = any(len(panel.rows) > 1 for panel in panels)
    legend_below(fig, _legend_entries(accuracy_axes[0], is_accuracy, several_seeds, hatched), columns=2)
    return fig, missing_rates(figure_stem(profile, task), rates) if is_accuracy else []
