"""``bench_speedup_<device>``: the sequential / parallel time ratio per neuron against the sequence length L.

One panel per pass (forward; forward + backward), a line per neuron in the style of the zoo model
built on it (``figure_style.neuron_style``), log-log axes, from the newest ``lra_snn.cli.bench`` JSON
of each device (by its ``meta.created`` stamp) that times at least two lengths. Every bench file read
is an input of every bench figure: a newer file replaces the one drawn.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from lra_snn.cli.figure_common import legend_below
from lra_snn.cli.figure_style import neuron_label, neuron_style

PLAIN = FuncFormatter(lambda value, _: f"{value:g}")  # 256, not 2^8
PASS_TITLES = {"forward": "forward (inference)", "forward_backward": "forward + backward (training)"}


def figure_stem(device: str) -> str:
    """The basename of the figure of one device."""
    return f"bench_speedup_{device}"


def newest_bench_per_device(paths: list[Path]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The newest readable bench JSON of each device among ``paths`` that times several lengths, and a note
    per file that is not one or times a single length."""
    newest: dict[str, dict[str, Any]] = {}
    notes = []
    for path in sorted(paths):
        try:
            data = json.loads(path.read_text())
            device, created = data["meta"]["device"], data["meta"]["created"]
            lengths = sorted({entry["length"] for entry in data["summary"]["speedup_sequential_over_parallel"]})
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            notes.append(
                f"plots: skipped bench file {path}: not a lra_snn.cli.bench result ({type(err).__name__}: {err})"
            )
            continue
        if len(lengths) < 2:  # a ratio against L needs several lengths
            notes.append(f"plots: bench file {path} not drawn: it times one length only ({lengths})")
            continue
        if device not in newest or created > newest[device]["meta"]["created"]:
            newest[device] = data
    return newest, notes


def speedup_series(summary: dict[str, Any], pass_name: str) -> dict[str, list[tuple[int, float]]]:
    """(L, sequential/parallel) points per neuron for one pass, lengths without a ratio left out."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for entry in summary["speedup_sequential_over_parallel"]:
        value = entry.get(pass_name)
        if value is not None and math.isfinite(value):
            series[entry["neuron"]].append((entry["length"], value))
    return {name: sorted(points) for name, points in series.items()}


def bench_figure(data: dict[str, Any]) -> Figure | None:
    """The figure of one device's bench file; None when it has no timed pair."""
    fig, axes = plt.subplots(1, len(PASS_TITLES), figsize=(7.2, 3.3), sharey=True)
    entries: dict[str, Artist] = {}
    for ax, (pass_name, title) in zip(axes, PASS_TITLES.items()):
        for neuron, points in sorted(speedup_series(data["summary"], pass_name).items()):
            style = neuron_style(neuron)
            lengths, ratios = zip(*points)
            (line,) = ax.plot(lengths, ratios, color=style.colour, marker=style.marker, mfc=style.face,
                              mec=style.colour, ms=4.5, lw=1.1, label=neuron_label(neuron))  # fmt: skip
            entries.setdefault(neuron, line)
        ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(PLAIN)
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1-2-5 ticks
        ax.yaxis.set_major_formatter(PLAIN)
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("sequence length L")
        ax.set_title(title)
        ax.grid(alpha=0.25, which="both", lw=0.6)
    if not entries:
        plt.close(fig)
        return None
    axes[0].set_ylabel("speedup: sequential / parallel time")
    meta = data["meta"]
    fig.suptitle(
        f"{meta.get('device_name', meta['device'])}, batch {meta.get('batch')}, width {meta.get('d_model')}, "
        f"{meta.get('dtype')} (bench of {meta['created']}); dashed: no speedup"
    )
    fig.tight_layout()
    legend_below(fig, [entries[name] for name in sorted(entries)], columns=4)
    return fig
