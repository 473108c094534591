"""Figures from result folders alone, as PNG (200 dpi) and PDF with a manifest: accuracy vs energy per task
with direct labels, Wilson intervals and seed ranges; one small-multiples curves figure per task; bench
speedup vs L; one style per model whatever is drawn beside it; chance and majority lines on every
accuracy axis; cells that did not learn marked; every cell left out named; a missing extra named."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="needs pip install -e .[plots]")
import matplotlib.pyplot as plt
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.colors import to_hex
from matplotlib.container import ErrorbarContainer
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from PIL import Image

from lra_snn.cli import plots
from lra_snn.cli.figure_bench import bench_figure, newest_bench_per_device, speedup_series
from lra_snn.cli.figure_cells import drawn_cells, run_detail
from lra_snn.cli.figure_common import STYLE
from lra_snn.cli.figure_curves import curve_panel, curves_figure
from lra_snn.cli.figure_drawing import draw_all
from lra_snn.cli.figure_energy import accuracy_energy_figure, energy_point
from lra_snn.cli.figure_manifest import MANIFEST_NAME, stale
from lra_snn.cli.figure_style import model_style
from lra_snn.config import PROJECT_ROOT
from lra_snn.results.board import group_runs
from lra_snn.results.curves import METRICS_FILENAME, Row, format_rows
from lra_snn.results.record import write_result
from lra_snn.results.render import energy_unit
from lra_snn.results.runs import load_runs

# (model, seed, test accuracy, energy per example in mJ)
RUNS = [
    ("s4d", 1, 0.60, 0.012),
    ("s4d", 2, 0.62, 0.012),
    ("s4d", 3, 0.64, 0.012),
    ("prf_ssm", 1, 0.55, 0.0002),
    ("prf_ssm", 2, 0.57, 0.0004),
]
EPOCHS = 4
MAJORITY, CHANCE, N_TEST = 0.175, 0.1, 100


def metric_rows(seed: int) -> list[Row]:
    """Two train rows per epoch, a validation row per epoch, and the best epoch's re-validation and test."""
    rows, steps_per_epoch = [], 10
    for epoch in range(1, EPOCHS + 1):
        for half in (0.5, 1.0):
            step = int((epoch - 1 + half) * steps_per_epoch)
            rows.append(Row("train", epoch - 1 + half, step, {"loss": 2.3 - 0.1 * epoch - 0.01 * seed}))
        rows.append(
            Row("val", float(epoch), epoch * steps_per_epoch, {"loss": 2.0, "acc": 0.2 + 0.05 * epoch + 0.01 * seed})
        )
    best = 2 if seed == 2 else 3
    rows.append(Row("final_val", float(best), best * 10, {"loss": 2.0, "acc": 0.2 + 0.05 * best + 0.01 * seed}))
    rows.append(Row("test", float(best), best * 10, {"loss": 2.1, "acc": 0.3 + 0.01 * seed}))
    return rows


def write_run(root: Path, model: str, seed: int, status: str = "completed", **options) -> None:
    """One result file (and its metrics file unless ``metrics_file=False``) under ``root/results``."""
    config_hash = options.get("config_hash", "abc123")
    folder = root / "results" / f"tiny/listops/{model}/{config_hash}/seed_{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    metrics = {}
    if status == "completed":
        metrics = {"test/acc": options["acc"], "test/loss": 1.0}
        metrics |= {"test/majority_rate": MAJORITY, "test/chance_rate": CHANCE}
        if options.get("energy") is not None:
            metrics["test/energy_mj"] = options["energy"]
    fields = {
        "status": status,
        "task": "listops",
        "model": model,
        "seed": seed,
        "profile": "tiny",
        "config_hash": config_hash,
        "git_commit": "0" * 40,
        "metrics": metrics,
        "config": {"data": {"n_test": options.get("n_test", N_TEST)}},
        **({"message": options["message"]} if "message" in options else {}),
    }
    if options.get("metrics_file", True):
        (folder / METRICS_FILENAME).write_text(format_rows(metric_rows(seed)))
        fields["metrics_file"] = METRICS_FILENAME
    write_result(folder / "result.json", fields)


def write_results(root: Path, runs=RUNS) -> Path:
    for model, seed, acc, energy in runs:
        write_run(root, model, seed, acc=acc, energy=energy)
    return root / "results"


def write_bench(folder: Path) -> Path:
    """A bench file of the lra_snn.cli.bench layout (no timing run: fast and the same on every machine)."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = [
        {"neuron": neuron, "length": length, "forward": ratio, "forward_backward": ratio / 2}
        for neuron, ratio in (("lif", 4.0), ("psn", 8.0))
        for length in (256, 1024)
    ]
    data = {
        "meta": {"device": "cpu", "created": "20260101-000000", "batch": 2, "d_model": 4, "dtype": "float32"},
        "summary": {"speedup_sequential_over_parallel": summary},
    }
    path = folder / "bench_cpu_20260101-000000.json"
    path.write_text(json.dumps(data))
    return path


def cells_of(results: Path):
    runs, problems = load_runs(results)
    assert not problems
    cells, _ = drawn_cells(runs)
    return {cell.model: cell for cell in cells}


def details_of(cell):
    return [run_detail(run) for run in cell.with_status("completed")]


def energy_figure(cells):
    points = [energy_point(cell)[0] for cell in cells]
    details = [d for cell in cells for d in details_of(cell)]
    with plt.rc_context(STYLE):
        fig, _ = accuracy_energy_figure("tiny", "listops", points, details)
    return fig


def curve_figure(cells):
    panels = [curve_panel(cell, details_of(cell))[0] for cell in cells]
    details = [d for cell in cells for d in details_of(cell) if d.rows is not None]
    with plt.rc_context(STYLE):
        fig, _ = curves_figure("tiny", "listops", panels, details)
    return fig


def marker_line(ax, model: str) -> Line2D:
    """The mean marker of ``model``: the one-point line drawn in its marker and colour."""
    style = model_style(model)
    (line,) = [
        line
        for line in ax.lines
        if line.get_marker() == style.marker and to_hex(line.get_markeredgecolor()) == style.colour
    ]
    return line


def test_every_figure_as_png_at_200_dpi_and_pdf_with_a_manifest(tmp_path):
    results = write_results(tmp_path)
    bench = write_bench(tmp_path / "bench")
    out = tmp_path / "figures"
    assert plots.main(["--results", str(results), "--bench", str(bench.parent), "--out", str(out)]) == 0
    stems = ["acc_vs_energy_tiny_listops", "bench_speedup_cpu", "curves_tiny_listops"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST_NAME, *(f"{stem}.{ext}" for stem in stems for ext in ("pdf", "png"))]
    )
    for stem in stems:
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        with Image.open(out / f"{stem}.png") as image:
            assert image.format == "PNG" and image.info["dpi"] == pytest.approx((200, 200), abs=0.01)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    energy_inputs = sorted(manifest["figures"]["acc_vs_energy_tiny_listops.png"])
    assert energy_inputs == sorted(
        f"../results/tiny/listops/{model}/abc123/seed_{seed}/result.json" for model, seed, *_ in RUNS
    )
    curve_inputs = manifest["figures"]["curves_tiny_listops.pdf"]
    assert len(curve_inputs) == 10 and "../results/tiny/listops/s4d/abc123/seed_1/metrics.csv" in curve_inputs
    assert list(manifest["figures"]["bench_speedup_cpu.png"]) == [f"../bench/{bench.name}"]
    assert stale(out / MANIFEST_NAME) == []


def test_a_redraw_of_the_same_data_writes_the_same_files(tmp_path):
    results = write_results(tmp_path)
    first = {p.name: p.read_bytes() for p in draw_all(results, tmp_path / "no_bench", tmp_path / "one")}
    second = {p.name: p.read_bytes() for p in draw_all(results, tmp_path / "no_bench", tmp_path / "two")}
    assert first == second  # no time stamp in the PDF: a redraw leaves git with nothing to commit


def test_every_cell_left_out_is_named_with_why(tmp_path, capsys):
    for seed in (1, 2, 3):
        write_run(tmp_path, "s4d", seed, acc=0.6, energy=0.01)
    write_run(tmp_path, "s4d", 4, status="failed", message="loss is nan at step 3")
    write_run(tmp_path, "s4d", 1, acc=0.7, energy=0.01, n_test=50, config_hash="def456")  # a variant
    write_run(tmp_path, "lif_ssm", 1, acc=0.5)  # no energy
    write_run(tmp_path, "prf_ssm", 1, acc=0.5, energy=0.001, metrics_file=False)
    write_run(tmp_path, "prf_ssm", 2, acc=0.5, energy=0.001)
    write_run(tmp_path, "dsn_ssm", 1, status="no_data", message="no data at data/listops")
    draw_all(tmp_path / "results", tmp_path / "no_bench", tmp_path / "figures")
    printed = capsys.readouterr().out.splitlines()
    left_out = [line.removeprefix("plots: left out of ") for line in printed if line.startswith("plots: left out")]
    names = [": ".join(line.split(": ")[:2]) for line in left_out]
    assert names == [
        "every figure: tiny/listops/dsn_ssm config abc123",
        "every figure: tiny/listops/s4d config abc123 seed 4",
        "every figure: tiny/listops/s4d config def456",
        "acc_vs_energy_tiny_listops: tiny/listops/lif_ssm config abc123",
        "curves_tiny_listops: tiny/listops/prf_ssm config abc123 seed 1",
    ]
    assert left_out[0].endswith("no completed run: seed 1 no_data (no data at data/listops)")
    assert left_out[1].endswith("seed 4: failed (loss is nan at step 3)")
    assert left_out[2].endswith("variant of the default config (data.n_test=50)")
    assert "no completed seed records test/energy_mj" in left_out[3]
    assert left_out[4].endswith("names no metrics_file (written before runs kept metrics.csv); rerun the cell")


def test_energy_figure_draws_wilson_intervals_seed_ranges_and_direct_labels(tmp_path):
    cells = cells_of(write_results(tmp_path))
    point = energy_point(cells["prf_ssm"])[0]
    assert point.metric == pytest.approx(56.0) and point.energy_mj == pytest.approx(0.0003)
    assert point.n_test == N_TEST and point.wilson() == pytest.approx((46.2281, 65.3280), abs=1e-4)
    fig = energy_figure([cells["s4d"], cells["prf_ssm"]])
    (ax,) = fig.axes
    assert ax.get_ylabel() == "test accuracy (%)" and ax.get_xlabel().startswith("estimated test energy")
    assert "(uJ" in ax.get_xlabel()
    marker = marker_line(ax, "s4d")
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == pytest.approx((12.0, 62.0))  # uJ and %
    assert marker.get_markerfacecolor() == "none"  # a baseline: open marker
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    wilson = [c for c in bars if c.lines[1]]  # the interval has caps, the seed range has none
    spans = sorted(tuple(round(v, 2) for v in c.lines[2][0].get_segments()[0][:, 1]) for c in wilson)
    assert spans == [(46.23, 65.33), (52.21, 70.9)]  # Wilson over 100 examples around 56 % and 62 %
    seed_ranges = [c for c in bars if not c.lines[1]]
    vertical = sorted(tuple(round(v, 2) for v in c.lines[2][1].get_segments()[0][:, 1]) for c in seed_ranges)
    assert vertical == [(55.0, 57.0), (60.0, 64.0)]
    assert sorted(t.get_text() for t in ax.texts) == ["prf_ssm (2 seeds)", "s4d (3 seeds)"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [
        "marker: mean over the cell's seeds (count beside its name)",
        "open marker: S4 family baseline",
        "95 % Wilson interval over the test examples (n = 100)",
        "seed range (min to max)",
        "one seed",
        "chance: 10.0 %",
        "majority class of the test split: 17.5 %",
        "not above the majority rate: did not learn",
    ]
    plt.close(fig)


def test_a_model_has_the_same_style_whatever_is_drawn_beside_it(tmp_path):
    cells = cells_of(write_results(tmp_path, [*RUNS, ("lif_ssm", 1, 0.5, 0.001)]))
    alone = marker_line(energy_figure([cells["s4d"]]).axes[0], "s4d")
    beside = marker_line(energy_figure([cells["lif_ssm"], cells["prf_ssm"], cells["s4d"]]).axes[0], "s4d")
    for line in (alone, beside):
        assert (to_hex(line.get_color()), line.get_marker(), line.get_markerfacecolor()) == ("#8c8c8c", "D", "none")
    plt.close("all")


def test_one_seed_is_called_one_seed(tmp_path):
    cells = cells_of(write_results(tmp_path, [("s4d", 1, 0.6, 0.012)]))
    fig = energy_figure([cells["s4d"]])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[0] == "marker: accuracy of the one seed" and "seed range (min to max)" not in legend
    assert [t.get_text() for t in fig.axes[0].texts] == ["s4d"]
    fig = curve_figure([cells["s4d"]])
    assert fig.axes[0].get_title() == "s4d (1 seed)"
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0] == "validation accuracy of the one seed (upper panels)"
    assert not [text for text in texts if "seeds" in text]
    plt.close("all")


def test_a_cell_not_above_the_majority_rate_is_marked_as_not_learned(tmp_path):
    cells = cells_of(write_results(tmp_path, [*RUNS[:3], ("prf_ssm", 1, 0.15, 0.0002), ("prf_ssm", 2, 0.18, 0.0004)]))
    assert not energy_point(cells["prf_ssm"])[0].learned  # mean 16.5 % <= majority 17.5 %
    assert energy_point(cells["s4d"])[0].learned
    fig = energy_figure([cells["s4d"], cells["prf_ssm"]])
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["prf_ssm (2 seeds): did not learn", "s4d (3 seeds)"]
    assert marker_line(fig.axes[0], "prf_ssm").get_alpha() == pytest.approx(0.6)
    fig = curve_figure([cells["s4d"], cells["prf_ssm"]])
    s4d_panel, prf_panel = fig.axes[0], fig.axes[2]
    assert [t.get_text() for t in prf_panel.texts] == ["did not learn"] and not s4d_panel.texts
    assert [p.get_hatch() for p in prf_panel.patches if isinstance(p, Rectangle)] == ["///"]
    plt.close("all")


def test_curves_are_one_panel_pair_per_model_with_reference_lines_in_every_accuracy_panel(tmp_path):
    cells = cells_of(write_results(tmp_path))
    fig = curve_figure([cells["prf_ssm"], cells["s4d"]])
    accuracy_panels = fig.axes[0::2]
    assert [ax.get_title() for ax in accuracy_panels] == ["s4d (3 seeds)", "prf_ssm (2 seeds)"]  # baselines first
    s4d, s4d_loss = fig.axes[0], fig.axes[1]
    assert s4d.get_ylabel() == "val. accuracy (%)" and s4d_loss.get_xlabel() == "epochs of training"
    assert s4d.get_shared_y_axes().joined(s4d, fig.axes[2]) and s4d.get_shared_y_axes().joined(s4d_loss, fig.axes[3])
    assert all(s4d.get_shared_x_axes().joined(s4d, ax) for ax in fig.axes)  # the first loss panel too
    validation = s4d.lines[0]
    assert list(validation.get_xdata()) == [1.0, 2.0, 3.0, 4.0]  # epochs, not optimizer steps
    assert validation.get_ydata() == pytest.approx([27.0, 32.0, 37.0, 42.0])  # mean over seeds 1-3, in %
    (band,) = [c for c in s4d.collections if isinstance(c, PolyCollection)]
    vertices = band.get_paths()[0].vertices[:, 1]
    assert (vertices.min(), vertices.max()) == pytest.approx((26.0, 43.0))  # every seed inside
    (tests,) = [c for c in s4d.collections if isinstance(c, PathCollection)]
    marks = sorted((round(float(x), 6), round(float(y), 6)) for x, y in tests.get_offsets())
    assert marks == [(2.0, 32.0), (3.0, 31.0), (3.0, 33.0)]  # each seed's test at its checkpoint's epoch
    for ax in accuracy_panels:
        levels = sorted((line.get_linestyle(), line.get_ydata()[0]) for line in ax.lines[1:])
        assert levels == [("--", pytest.approx(17.5)), (":", pytest.approx(10.0))]
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0] == "validation accuracy: mean over seeds, band min to max (upper panels)"
    plt.close(fig)


def test_language_model_curves_show_perplexity_without_reference_lines(tmp_path):
    folder = tmp_path / "results" / "tiny/wikitext103/s4d/abc123/seed_1"
    folder.mkdir(parents=True)
    rows = [Row("train", 0.5, 5, {"loss": 6.0}), Row("val", 1.0, 10, {"loss": 5.5, "ppl": 244.7})]
    rows += [Row("final_val", 1.0, 10, {"loss": 5.5, "ppl": 244.7}), Row("test", 1.0, 10, {"loss": 5.6, "ppl": 270.4})]
    (folder / METRICS_FILENAME).write_text(format_rows(rows))
    fields = {"status": "completed", "task": "wikitext103", "model": "s4d", "seed": 1, "profile": "tiny"}
    fields |= {"config_hash": "abc123", "git_commit": "0" * 40, "config": {}, "metrics_file": METRICS_FILENAME}
    write_result(folder / "result.json", {**fields, "metrics": {"test/ppl": 270.4, "test/loss": 5.6}})
    runs, _ = load_runs(tmp_path / "results")
    groups, _ = group_runs(runs)
    cell = groups[("tiny", "s4d", "wikitext103")]
    panel, _ = curve_panel(cell, details_of(cell))
    fig, notes = curves_figure("tiny", "wikitext103", [panel], details_of(cell))
    ax = fig.axes[0]
    assert ax.get_ylabel() == "val. perplexity" and notes == []
    assert list(ax.lines[0].get_ydata()) == pytest.approx([244.7])  # not scaled to %
    assert len(ax.lines) == 1  # no chance or majority line
    plt.close(fig)


def test_bench_lines_take_the_style_of_their_neurons_zoo_model(tmp_path):
    data = json.loads(write_bench(tmp_path).read_text())
    fig = bench_figure(data)
    forward = fig.axes[0]
    (lif,) = [line for line in forward.lines if line.get_label() == "lif (lif_ssm)"]
    style = model_style("lif_ssm")
    assert (to_hex(lif.get_color()), lif.get_marker(), lif.get_markerfacecolor()) == ("#ff7f0e", "s", style.colour)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["lif (lif_ssm)", "psn (psn_ssm)"]
    plt.close(fig)


def test_speedup_series_leaves_out_untimed_lengths():
    summary = {
        "speedup_sequential_over_parallel": [
            {"neuron": "lif", "length": 1024, "forward": 6.5, "forward_backward": None},
            {"neuron": "lif", "length": 256, "forward": 2.0, "forward_backward": 1.5},
        ]
    }
    assert speedup_series(summary, "forward") == {"lif": [(256, 2.0), (1024, 6.5)]}
    assert speedup_series(summary, "forward_backward") == {"lif": [(256, 1.5)]}


@pytest.mark.parametrize(("values", "unit", "factor"), [([0.0002, 0.9], "uJ", 1000.0), ([0.5, 1.2], "mJ", 1.0)])
def test_energy_unit_follows_the_largest_value(values, unit, factor):
    assert energy_unit(values) == (unit, factor)  # the figures use the board's rule


def test_missing_data_draws_nothing_and_says_why(tmp_path, capsys):
    out = tmp_path / "figures"
    assert draw_all(tmp_path / "no_results", tmp_path / "no_bench", out) == []
    printed = capsys.readouterr().out
    assert "no result.json under" in printed and "no bench_*.json under" in printed
    assert not out.exists()


def test_without_matplotlib_the_command_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert plots.main(["--out", "/nonexistent/figures"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "lra-plots needs matplotlib: pip install 'lra-snn[plots]'\n" and captured.out == ""


def test_make_plots_draws_into_a_git_ignored_folder_and_make_figures_the_shipped_one():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    recipes = dict(re.findall(r"^(plots|figures): .*\n\t(.*)$", makefile, flags=re.MULTILINE))
    assert "--results $(or $(RUNS),results/local/runs)" in recipes["plots"]
    assert "--out $(or $(FIGURES),results/local/figures)" in recipes["plots"]
    assert "--results results/reference-runs" in recipes["figures"] and "--out results/figures" in recipes["figures"]
    assert "/results/local/" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()


def test_figures_are_never_drawn_into_the_shipped_runs(tmp_path, capsys):
    from lra_snn.config.locations import SHIPPED_RUNS_DIR

    link = tmp_path / "shortcut"
    link.symlink_to(SHIPPED_RUNS_DIR)
    for out in (SHIPPED_RUNS_DIR / "figures", link / "mini"):
        before = sorted(SHIPPED_RUNS_DIR.rglob("*"))
        assert plots.main(["--results", str(SHIPPED_RUNS_DIR), "--out", str(out)]) == 2
        assert f"--out={out} lies inside {SHIPPED_RUNS_DIR}, the shipped runs" in capsys.readouterr().err
        assert sorted(SHIPPED_RUNS_DIR.rglob("*")) == before


def test_a_bench_of_one_length_is_not_drawn_against_length(tmp_path):
    several = json.loads(write_bench(tmp_path / "a").read_text())
    one = {**several, "meta": {**several["meta"], "created": "20260202-000000"}}
    one["summary"] = {"speedup_sequential_over_parallel": several["summary"]["speedup_sequential_over_parallel"][:1]}
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bench_cpu_20260202-000000.json").write_text(json.dumps(one))
    newest, notes = newest_bench_per_device(sorted(tmp_path.glob("*/bench_cpu_*.json")))
    assert newest["cpu"]["meta"]["created"] == "20260101-000000"  # the newer file times one length only
    single = tmp_path / "b" / "bench_cpu_20260202-000000.json"
    assert notes == [f"plots: bench file {single} not drawn: it times one length only ([256])"]
