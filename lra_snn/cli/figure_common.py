"""What every figure shares: the matplotlib settings, the chance and majority lines, the did-not-learn
hatching, the legend below the axes, and saving as PNG and PDF under one basename."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

PNG_DPI = 200
FORMATS = ("png", "pdf")
# matplotlib rc settings while drawing; TrueType fonts in the PDF (Type 42) stay text, as journals ask
STYLE: dict[Any, Any] = {
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "legend.fontsize": 8,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "pdf.fonttype": 42,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
REFERENCE_COLOUR = "0.3"
HATCH = "///"
HATCH_COLOUR = "0.85"
NOT_LEARNED_LABEL = "not above the majority rate: did not learn"


def draw_reference_lines(ax: Axes, rates: dict[str, float]) -> None:
    """Horizontal chance (dotted) and majority (dashed) lines, labelled with their value for the legend."""
    if "chance" in rates:
        ax.axhline(rates["chance"], color=REFERENCE_COLOUR, ls=":", lw=1.1, label=f"chance: {rates['chance']:.1f} %")
    if "majority" in rates:
        ax.axhline(
            rates["majority"],
            color=REFERENCE_COLOUR,
            ls="--",
            lw=0.9,
            label=f"majority class of the test split: {rates['majority']:.1f} %",
        )


def missing_rates(figure: str, rates: dict[str, float]) -> list[str]:
    """The printed note for each reference line an accuracy figure lacks, and why."""
    notes = []
    if "chance" not in rates:
        notes.append(f"plots: {figure}: no chance line: no run records test/chance_rate (runs written before it)")
    if "majority" not in rates:
        notes.append(f"plots: {figure}: no majority line: no run records test/majority_rate")
    return notes


def not_learned_patch() -> Patch:
    """The legend entry of the did-not-learn hatching."""
    return Patch(facecolor="none", edgecolor=HATCH_COLOUR, hatch=HATCH, label=NOT_LEARNED_LABEL)


def with_reference_entries(entries: list[Artist], ax: Axes, hatched: bool) -> list[Artist]:
    """``entries`` followed by the reference lines drawn on ``ax`` and, when ``hatched``, the did-not-learn patch."""
    handles, _ = ax.get_legend_handles_labels()
    return [*entries, *handles, *([not_learned_patch()] if hatched else [])]


def legend_below(fig: Figure, entries: list[Artist], columns: int) -> None:
    """One legend for the figure, under its axes (never over the data), of ``entries`` (their labels)."""
    labels = [str(entry.get_label()) for entry in entries]
    fig.legend(entries, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=columns, frameon=False)


def save(fig: Figure, out: Path, stem: str) -> list[Path]:
    """Write ``fig`` as ``<stem>.png`` (PNG_DPI) and ``<stem>.pdf`` under ``out``, grown to hold what lies
    outside the axes, with no time stamp (a redraw of the same data gives the same PDF); close it."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for extension in FORMATS:
        path = out / f"{stem}.{extension}"
        metadata = {"CreationDate": None} if extension == "pdf" else None
        fig.savefig(path, dpi=PNG_DPI, bbox_inches="tight", pad_inches=0.05, metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths
