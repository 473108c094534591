"""Figures: accuracy vs energy per task, bench speedup vs L, training curves per cell (PNG files),
and the printed reason for every kind that has no data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="needs pip install -e .[plots]")
from lra_snn.cli import bench, plots
from lra_snn.results.board import group_runs
from lra_snn.results.record import write_result
from lra_snn.results.runs import load_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# (model, seed, test accuracy, energy per example in mJ)
RUNS = [("s4d", 1, 0.60, 12.0), ("s4d", 2, 0.62, 12.0), ("prf_ssm", 1, 0.55, 0.2), ("prf_ssm", 2, 0.57, 0.4)]


def write_metric_log(path: Path, seed: int) -> None:
    """A Lightning CSVLogger file: per-step training loss rows, per-epoch validation rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["epoch", "step", "train/loss_step", "val/acc", "val/loss"])
        writer.writeheader()
        for step in range(6):
            writer.writerow({"epoch": step // 3, "step": step, "train/loss_step": 2.3 - 0.1 * step - 0.01 * seed})
            if step % 3 == 2:
                writer.writerow({"epoch": step // 3, "step": step, "val/acc": 0.2 + 0.05 * step, "val/loss": 2.0})


def write_results(root: Path, with_energy: bool = True) -> Path:
    """result.json files (schema 1) for RUNS at the tiny profile, with their CSV logs."""
    for model, seed, acc, energy in RUNS:
        cell = f"tiny/listops/{model}/abc123/seed_{seed}"
        run_dir = root / "outputs" / cell
        write_metric_log(run_dir / "logs" / "metrics.csv", seed)
        metrics = {"test/acc": acc, "test/loss": 1.0, **({"test/energy_mj": energy} if with_energy else {})}
        write_result(
            root / "results" / cell / "result.json",
            {
                "status": "completed",
                "task": "listops",
                "model": model,
                "seed": seed,
                "profile": "tiny",
                "config_hash": "abc123",
                "git_commit": "0" * 40,
                "metrics": metrics,
                "config": {"paths": {"run_dir": str(run_dir)}},
            },
        )
    return root / "results"


def is_png(path: Path) -> bool:
    """The file exists and starts with the PNG signature."""
    return path.exists() and path.read_bytes()[:8] == PNG_MAGIC


def test_energy_points_are_seed_means_with_spread(tmp_path):
    runs, problems = load_runs(write_results(tmp_path))
    groups, _ = group_runs(runs)
    assert not problems
    point = plots.energy_points(groups[("tiny", "prf_ssm", "listops")])
    assert point["metric"] == pytest.approx(56.0) and point["energy_mj"] == pytest.approx(0.3)
    assert point["metric_std"] == pytest.approx(1.41421356) and point["n_seeds"] == 2
    assert plots.energy_points(groups[("tiny", "s4d", "listops")])["energy_std"] == 0.0


def test_all_three_kinds_of_figure_are_drawn(tmp_path):
    results = write_results(tmp_path)
    bench_dir = tmp_path / "bench"
    assert (
        bench.main(
            [
                "--neurons",
                "lif",
                "--lengths",
                "8,16",
                "--batch",
                "2",
                "--d-model",
                "4",
                "--repeats",
                "1",
                "--warmup",
                "1",
                "--out",
                str(bench_dir),
            ]
        )
        == 0
    )
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
