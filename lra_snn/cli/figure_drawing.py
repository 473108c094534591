"""Every figure the data allows, drawn into one folder with its manifest, and a printed line for all left out.

Per (profile, task) of the drawn cells (``figure_cells.drawn_cells``): the accuracy-vs-energy figure
(``figure_energy``) and the training-curves figure (``figure_curves``); per device of the bench
folder: the speedup figure (``figure_bench``). Each is saved as PNG and PDF (``figure_common.save``),
and ``figures.json`` records what each was drawn from (``figure_manifest``). A figure file already in
the folder that this drawing did not write is named, since it no longer matches the data.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt

from lra_snn.cli.figure_bench import bench_figure, newest_bench_per_device
from lra_snn.cli.figure_bench import figure_stem as bench_stem
from lra_snn.cli.figure_cells import LeftOut, RunDetail, drawn_cells, run_detail
from lra_snn.cli.figure_common import STYLE, save
from lra_snn.cli.figure_curves import curve_panel, curves_figure
from lra_snn.cli.figure_curves import figure_stem as curves_stem
from lra_snn.cli.figure_energy import accuracy_energy_figure, energy_point
from lra_snn.cli.figure_energy import figure_stem as energy_stem
from lra_snn.cli.figure_manifest import BENCH_GLOB, FIGURE_SUFFIXES, write_manifest
from lra_snn.results.board import Group
from lra_snn.results.runs import load_runs

Drawn = dict[Path, list[Path]]  # figure file -> the input files it was drawn from


def _report(lines: list[str] | list[LeftOut]) -> None:
    """Print each line (a left-out entry as its line)."""
    for line in lines:
        print(line.line() if isinstance(line, LeftOut) else line)


def draw_task(profile: str, task: str, cells: list[tuple[Group, list[RunDetail]]], out: Path) -> Drawn:
    """The accuracy-vs-energy and training-curves figures of one (profile, task)."""
    drawn: Drawn = {}
    points, energy_details, left_out = [], [], []
    for cell, details in cells:
        point, missing = energy_point(cell)
        left_out += missing
        if point is not None:
            points.append(point)
            energy_details += details
    _report(left_out)
    if points:
        fig, notes = accuracy_energy_figure(profile, task, points, energy_details)
        _report(notes)
        inputs = [detail.run.path for detail in energy_details]  # the energy figure reads result.json only
        drawn |= dict.fromkeys(save(fig, out, energy_stem(profile, task)), inputs)
    panels, curve_details, left_out = [], [], []
    for cell, details in cells:
        panel, missing = curve_panel(cell, details)
        left_out += missing
        if panel is not None:
            panels.append(panel)
            curve_details += [detail for detail in details if detail.rows is not None]
    _report(left_out)
    if panels:
        fig, notes = curves_figure(profile, task, panels, curve_details)
        _report(notes)
        inputs = [path for detail in curve_details for path in detail.inputs]
        drawn |= dict.fromkeys(save(fig, out, curves_stem(profile, task)), inputs)
    return drawn


def draw_runs(results: Path, out: Path) -> Drawn:
    """The figures of every (profile, task) of the runs under ``results``."""
    runs, problems = load_runs(results) if results.is_dir() else ([], [])
    for problem in problems:
        print(f"plots: {problem}")
    if not runs:
        print(f"plots: no accuracy-vs-energy or training-curve figures: no result.json under {results}")
        return {}
    cells, left_out = drawn_cells(runs)
    _report(left_out)
    by_task: dict[tuple[str, str], list[tuple[Group, list[RunDetail]]]] = defaultdict(list)
    for cell in cells:
        details = [run_detail(run) for run in cell.with_status("completed")]
        by_task[(cell.profile, cell.task)].append((cell, details))
    drawn: Drawn = {}
    for (profile, task), task_cells in sorted(by_task.items()):
        drawn |= draw_task(profile, task, task_cells, out)
    return drawn


def draw_bench(bench: Path, out: Path) -> Drawn:
    """The speedup figure of each device in the bench folder; every bench file is an input of each."""
    paths = sorted(bench.glob(BENCH_GLOB)) if bench.is_dir() else []
    if not paths:
        print(f"plots: no bench speedup figure: no {BENCH_GLOB} under {bench} (make bench writes them)")
        return {}
    newest, notes = newest_bench_per_device(paths)
    _report(notes)
    drawn: Drawn = {}
    for device, data in sorted(newest.items()):
        fig = bench_figure(data)
        if fig is None:
            print(f"plots: no bench speedup figure for {device}: the newest file has no timed pair")
            continue
        drawn |= dict.fromkeys(save(fig, out, bench_stem(device)), paths)
    return drawn


def draw_all(results: Path, bench: Path, out: Path) -> list[Path]:
    """Every figure the data allows (in ``STYLE``) and its manifest; the figure files written."""
    with plt.rc_context(STYLE):
        drawn = draw_runs(results, out) | draw_bench(bench, out)
    if drawn:
        write_manifest(out, results, bench, drawn)
        for path in sorted(p for p in out.rglob("*") if p.suffix in FIGURE_SUFFIXES and p not in drawn):
            print(f"plots: {path} was not drawn from these data (an older figure?): delete it")
    return sorted(drawn)
