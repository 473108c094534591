"""Figures from result folders alone: accuracy vs energy per task, bench speedup vs L, training
curves per cell from each run's metrics.csv; accuracy in %, chance and majority lines, the
re-validation on the epoch it re-measures, and the printed reason for everything left out."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("matplotlib", reason="needs pip install -e .[plots]")
import matplotlib.pyplot as plt
from matplotlib.collections import PathCollection, PolyCollection

from lra_snn.cli import bench, plots
from lra_snn.results.board import group_runs
from lra_snn.results.curves import METRICS_FILENAME, Row, format_rows
from lra_snn.results.record import write_result
from lra_snn.results.runs import load_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# (model, seed, test accuracy, energy per example in mJ)
RUNS = [
    ("s4d", 1, 0.60, 0.012),
    ("s4d", 2, 0.62, 0.012),
    ("s4d", 3, 0.64, 0.012),
    ("prf_ssm", 1, 0.55, 0.0002),
    ("prf_ssm", 2, 0.57, 0.0004),
]
EPOCHS = 4
BEST_EPOCH = {1: 3, 2: 2, 3: 3}  # per seed: the epoch of its best validation pass
MAJORITY, CHANCE = 0.175, 0.1


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
    best = BEST_EPOCH[seed]
    rows.append(
        Row("final_val", float(best), best * steps_per_epoch, {"loss": 2.0, "acc": 0.2 + 0.05 * best + 0.01 * seed})
    )
    rows.append(Row("test", float(best), best * steps_per_epoch, {"loss": 2.1, "acc": 0.3}))
    return rows


def write_results(root: Path, with_energy: bool = True, without_metrics_file: tuple[int, ...] = ()) -> Path:
    """Result files for RUNS at the tiny profile in a results folder, each with its metrics.csv
    except the seeds in ``without_metrics_file`` (results written before runs kept one)."""
    for model, seed, acc, energy in RUNS:
        folder = root / "results" / f"tiny/listops/{model}/abc123/seed_{seed}"
        metrics = {
            "test/acc": acc,
            "test/loss": 1.0,
            "test/majority_rate": MAJORITY,
            "test/chance_rate": CHANCE,
            **({"test/energy_mj": energy} if with_energy else {}),
        }
        fields = {
            "status": "completed",
            "task": "listops",
            "model": model,
            "seed": seed,
            "profile": "tiny",
            "config_hash": "abc123",
            "git_commit": "0" * 40,
            "metrics": metrics,
            "config": {},
        }
        if seed not in without_metrics_file:
            (folder).mkdir(parents=True, exist_ok=True)
            (folder / METRICS_FILENAME).write_text(format_rows(metric_rows(seed)))
            fields["metrics_file"] = METRICS_FILENAME
        write_result(folder / "result.json", fields)
    return root / "results"


def is_png(path: Path) -> bool:
    """The file exists and starts with the PNG signature."""
    return path.exists() and path.read_bytes()[:8] == PNG_MAGIC


def s4d_group(results: Path):
    runs, problems = load_runs(results)
    assert not problems
    groups, _ = group_runs(runs)
    return groups[("tiny", "s4d", "listops")]


def labelled(ax, prefix: str):
    """The artists of ``ax`` whose legend label starts with ``prefix``."""
    artists = [*ax.lines, *ax.collections]
    return [artist for artist in artists if str(artist.get_label()).startswith(prefix)]


def test_all_three_kinds_of_figure_are_drawn(tmp_path):
    results = write_results(tmp_path)
    bench_dir = tmp_path / "bench"
    arguments = ["--neurons", "lif", "--lengths", "8,16", "--batch", "2", "--d-model", "4"]
    assert bench.main([*arguments, "--repeats", "1", "--warmup", "1", "--out", str(bench_dir)]) == 0
    out = tmp_path / "figures"
    assert plots.main(["--results", str(results), "--bench", str(bench_dir), "--out", str(out)]) == 0
    expected = [
        out / "acc_vs_energy_tiny_listops.png",
        out / "bench_speedup_cpu.png",
        out / "curves" / "tiny_listops_s4d_abc123.png",
        out / "curves" / "tiny_listops_prf_ssm_abc123.png",
    ]
    assert all(is_png(path) for path in expected), [p for p in expected if not is_png(p)]
    assert sorted(p.name for p in out.rglob("*.png")) == sorted(p.name for p in expected)


def test_curves_use_epochs_percent_every_seed_and_reference_lines(tmp_path):
    group = s4d_group(write_results(tmp_path))
    fig = plots.curves_figure(group, [plots.run_detail(run) for run in group.with_status("completed")])
    acc_ax = fig.axes[1]
    assert "%" in acc_ax.get_ylabel() and "epoch" in acc_ax.get_xlabel()

    (val_line,) = labelled(acc_ax, "validation accuracy")
    assert list(val_line.get_xdata()) == [1.0, 2.0, 3.0, 4.0]  # epochs, not optimizer steps
    # percent: the mean over seeds 1-3 of 0.2 + 0.05 * epoch + 0.01 * seed, times 100
    assert val_line.get_ydata() == pytest.approx([27.0, 32.0, 37.0, 42.0])
    (band,) = [c for c in acc_ax.collections if isinstance(c, PolyCollection)]
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    assert (low, high) == pytest.approx((26.0, 43.0))  # seed 1 at epoch 1 to seed 3 at epoch 4: every seed

    (revalidation,) = [c for c in labelled(acc_ax, "re-validation") if isinstance(c, PathCollection)]
    points = sorted((round(float(x), 6), round(float(y), 6)) for x, y in revalidation.get_offsets())
    assert points == [(2.0, 32.0), (3.0, 36.0), (3.0, 38.0)]  # on each seed's best epoch
    assert max(x for x, _ in points) <= EPOCHS  # never an extra epoch after the last one

    (chance,) = labelled(acc_ax, "chance")
    (majority,) = labelled(acc_ax, "majority")
    assert list(chance.get_ydata()) == pytest.approx([10.0, 10.0])
    assert list(majority.get_ydata()) == pytest.approx([17.5, 17.5])
    assert "seeds 1, 2, 3" in fig.texts[0].get_text()
    assert fig.legends and not acc_ax.get_legend()  # one legend, below the panels, not over the data
    plt.close(fig)


def test_energy_figure_in_percent_with_a_unit_that_fits(tmp_path, capsys):
    runs, _ = load_runs(write_results(tmp_path))
    groups, _ = group_runs(runs)
    (path,) = plots.plot_accuracy_vs_energy(groups, tmp_path / "figures")
    assert is_png(path)
    assert "no chance line" not in capsys.readouterr().out

    point = plots.energy_point(groups[("tiny", "prf_ssm", "listops")])
    assert point.metric == pytest.approx(56.0) and point.energy_mj == pytest.approx(0.0003)
    entries = [(group, plots.energy_point(group)) for group in groups.values()]
    fig = plots.accuracy_energy_figure("tiny", "listops", entries, plots.model_styles(groups.values()))
    (ax,) = fig.axes
    assert ax.get_ylabel() == "test accuracy (%)" and ax.get_xlabel().endswith("(uJ)")
    (s4d,) = [bars for bars in ax.containers if bars.get_label() == "s4d (3 seeds)"]
    marker = s4d.lines[0]
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == pytest.approx((12.0, 62.0))  # uJ and %
    assert labelled(ax, "chance") and labelled(ax, "majority")
    plt.close(fig)


def test_every_model_of_a_drawing_has_its_own_colour_and_marker():
    """Twelve models (more than tab10's colours): the eleventh and twelfth reuse a colour with another marker."""
    names = [f"model_{i:02d}" for i in range(12)]
    styles = plots.model_styles(SimpleNamespace(model=name) for name in reversed(names))
    assert len(set(styles.values())) == 12
    assert styles["model_00"] == ("#1f77b4", "o") and styles["model_09"][1] == "o"
    assert styles["model_10"] == ("#1f77b4", "s") and styles["model_11"] == ("#ff7f0e", "s")
    with pytest.raises(ValueError, match="51 models in one drawing: at most 50"):
        plots.model_styles(SimpleNamespace(model=f"m{i}") for i in range(51))


@pytest.mark.parametrize(("values", "unit", "factor"), [([0.0002, 0.9], "uJ", 1000.0), ([0.5, 1.2], "mJ", 1.0)])
def test_energy_unit_follows_the_largest_value(values, unit, factor):
    assert plots.energy_unit(values) == (factor, unit)


def test_runs_without_a_metrics_file_are_left_out_with_a_reason(tmp_path, capsys):
    results = write_results(tmp_path, without_metrics_file=(3,))
    group = s4d_group(results)
    fig = plots.curves_figure(group, [plots.run_detail(run) for run in group.with_status("completed")])
    printed = capsys.readouterr().out
    assert "tiny/listops/s4d seed 3 left out of the training curves" in printed
    assert "names no metrics_file" in printed and "rerun the cell" in printed
    assert "seeds 1, 2" in fig.texts[0].get_text() and "3" not in fig.texts[0].get_text().split("seeds")[1]
    plt.close(fig)

    # no seed with a file: no curves figure, one line saying why; the energy figure is still drawn
    (tmp_path / "all").mkdir()
    results = write_results(tmp_path / "all", without_metrics_file=(1, 2, 3))
    written = plots.draw_all(results, tmp_path / "no_bench", tmp_path / "figures")
    printed = capsys.readouterr().out
    assert "no training curves for tiny/listops/s4d: none of its 3 seed(s) has one" in printed
    assert [p.name for p in written] == ["acc_vs_energy_tiny_listops.png"]


def test_missing_data_skips_each_kind_with_a_reason(tmp_path, capsys):
    out = tmp_path / "figures"
    assert plots.draw_all(tmp_path / "no_results", tmp_path / "no_bench", out) == []
    printed = capsys.readouterr().out
    assert "no result.json under" in printed and "no bench_*.json under" in printed
    assert not out.exists()

    results = write_results(tmp_path, with_energy=False)
    written = plots.draw_all(results, tmp_path / "no_bench", out)
    assert "no completed run records test/energy_mj" in capsys.readouterr().out
    assert sorted(p.parent.name for p in written) == ["curves", "curves"]


def test_speedup_series_leaves_out_untimed_lengths():
    summary = {
        "speedup_sequential_over_parallel": [
            {"neuron": "lif", "length": 1024, "forward": 6.5, "forward_backward": None},
            {"neuron": "lif", "length": 256, "forward": 2.0, "forward_backward": 1.5},
        ]
    }
    assert plots.speedup_series(summary, "forward") == {"lif": [(256, 2.0), (1024, 6.5)]}
    assert plots.speedup_series(summary, "forward_backward") == {"lif": [(256, 1.5)]}


def test_language_model_curves_show_perplexity_without_chance_lines(tmp_path):
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
    group = groups[("tiny", "s4d", "wikitext103")]
    fig = plots.curves_figure(group, [plots.run_detail(run) for run in group.runs])
    ax = fig.axes[1]
    assert ax.get_ylabel().startswith("perplexity")
    (val_line,) = labelled(ax, "validation perplexity")
    assert list(val_line.get_ydata()) == pytest.approx([244.7])  # not scaled to %
    assert not labelled(ax, "chance") and not labelled(ax, "majority")
    plt.close(fig)
