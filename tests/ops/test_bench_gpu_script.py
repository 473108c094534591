"""The GPU benchmark job (scripts/bench_gpu.py) end to end on its CPU path: the Triton interpreter
at tiny sizes; checks the correctness records, copy bandwidth, primitive and neuron records, tables."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench_gpu():
    spec = importlib.util.spec_from_file_location("bench_gpu_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script executes
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.mark.slow
def test_tiny_run_writes_json_and_tables(bench_gpu, tmp_path, capsys):
    code = bench_gpu.main(["--tiny", "--out", str(tmp_path), "--neurons", "lif,dsn,psn"])
    out = capsys.readouterr().out
    (path,) = tmp_path.glob("bench_gpu_*.json")
    result = json.loads(path.read_text())
    assert code == 0, out
    assert path.with_suffix(".md").read_text().strip() == out.split("\nresults:")[0].strip()
    names = [p.name for p in bench_gpu.PRIMITIVES]
    assert [c["primitive"] for c in result["correctness"]] == names
    assert all(c["ok"] and c["length"] == 33 for c in result["correctness"])
    assert result["copy_bandwidth"]["gb_per_s"] > 0
    sweep = result["tiles"]["sweep"]
    assert [(r["kind"], r["status"]) for r in sweep] == [("scan", "ok")] * 2 + [("sequential", "ok")] * 2
    for kind in ("scan", "sequential"):
        (chosen,) = [r for r in sweep if r["kind"] == kind and r["chosen"]]
        assert chosen["total_s"] == min(r["total_s"] for r in sweep if r["kind"] == kind)
        assert result["tiles"]["chosen"][kind] == chosen["tile"]
    assert set(sweep[0]["median_s"]) == {"scan_per_step/forward_backward", "dsn_fused/forward_backward"}
    timed = {(r["primitive"], r["backend"], r["pass"]) for r in result["primitives"] if r["status"] == "ok"}
    for name in names:
        passes = ["forward"] if name in ("refractory_iteration", "threshold_scan") else ["forward", "forward_backward"]
        assert {(name, b, p) for b in ("torch", "triton") for p in passes} <= timed
    triton_rows = [r for r in result["primitives"] if r["backend"] == "triton"]
    assert all(
        r["fraction_of_copy"] == pytest.approx(r["gb_per_s"] / result["copy_bandwidth"]["gb_per_s"])
        for r in triton_rows
    )
    neurons = {(r["neuron"], r["implementation"], r["pass"]): r["status"] for r in result["neurons"]["records"]}
    assert neurons[("lif", "triton", "forward_backward")] == "ok"
    assert neurons[("dsn", "triton", "forward")] == "ok"
    assert neurons[("psn", "triton", "forward")] == "unavailable"
    assert result["meta"]["interpreter"] is not torch.cuda.is_available() and result["meta"]["triton"]
    assert "| primitive | L | pass | torch ms | triton ms | speedup | triton GB/s | of copy |" in out
    assert "| scan_per_step | 17 | forward_backward |" in out
    assert "| kind | chunk | channels | warps | workload ms | chosen |" in out
    assert "PSN (PyTorch) / DSN (Triton)" in out and "16.5x" in out


def test_relative_error_flags_nan(bench_gpu):
    assert bench_gpu.relative_error(torch.tensor([float("nan")]), torch.tensor([1.0])) == float("inf")
    assert bench_gpu.relative_error(torch.tensor([2.5]), torch.tensor([2.0])) == pytest.approx(0.25)
