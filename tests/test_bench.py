"""End-to-end run of the neuron speed benchmark (``python -m lra_snn.cli.bench``) on tiny sizes."""

from __future__ import annotations

import json

import pytest

from lra_snn.cli import bench
from lra_snn.neurons import NEURONS

TINY = ["--lengths", "16,33", "--repeats", "2", "--warmup", "1", "--batch", "2", "--d-model", "4",
        "--max-seq-length", "16", "--psn-max-t", "20", "--psn-k", "3"]
ENV_FIELDS = ("device", "device_name", "torch", "python", "threads", "batch", "d_model", "dtype")


def run(tmp_path, capsys, *extra: str):
    """Run the benchmark; the later of repeated options wins, so ``extra`` overrides TINY."""
    code = bench.main([*TINY, "--out", str(tmp_path), *extra])
    (path,) = tmp_path.glob("bench_cpu_*.json")
    return code, json.loads(path.read_text()), capsys.readouterr().out


def test_benchmark_all_registered_neurons(tmp_path, capsys):
    code, result, table = run(tmp_path, capsys)
    records = result["records"]
    assert len(records) == len(NEURONS) * 2 * 2 * 2  # neuron x L x implementation x pass
    assert {r["neuron"] for r in records} == set(NEURONS)
    for r in records:
        assert {f: r[f] for f in ENV_FIELDS} == {f: result["meta"][f] for f in ENV_FIELDS}
        assert (r["batch"], r["d_model"], r["dtype"], r["device"]) == (2, 4, "float32", "cpu")
    by_key = bench.index_records(records)
    available = {r["neuron"] for r in records if r["status"] != "unavailable"}
    for r in records:
        if r["status"] == "unavailable":
            assert r["reason"].startswith("not importable")
    for name in available:
        for impl in bench.IMPLEMENTATIONS:
            for pass_name in bench.PASSES:
                timed = by_key[(name, impl, pass_name, 16)]
                assert timed["status"] == "ok", timed
                assert len(timed["times_s"]) == 2 and timed["min_s"] <= timed["median_s"] <= timed["max_s"]
                assert 0 < timed["q1_s"] <= timed["q3_s"] and timed["firing_rate"] is not None
        capped = name in ("psn", "masked_psn")  # T = 33 > --psn-max-t 20
        long_seq = by_key[(name, "sequential", "forward_backward", 33)]
        assert long_seq["status"] == "skipped"
        assert ("max_T=20" if capped else "--max-seq-length=16") in long_seq["reason"]
        long_par = by_key[(name, "parallel", "forward", 33)]
        assert long_par["status"] == ("skipped" if capped else "ok"), long_par
    assert code == 0

    speedups = {(e["neuron"], e["length"]): e for e in result["summary"]["speedup_sequential_over_parallel"]}
    for name in available:
        seq, par = by_key[(name, "sequential", "forward", 16)], by_key[(name, "parallel", "forward", 16)]
        assert speedups[(name, 16)]["forward"] == pytest.approx(seq["median_s"] / par["median_s"])
        assert speedups[(name, 33)]["forward"] is None
    (ratio16, ratio33) = result["summary"]["psn_over_dsn"]
    psn, dsn = by_key[("psn", "parallel", "forward_backward", 16)], by_key[("dsn", "parallel", "forward_backward", 16)]
    assert ratio16["forward_backward"] == pytest.approx(psn["median_s"] / dsn["median_s"])
    assert ratio33["forward_backward"] is None

    assert "| neuron | L | seq fwd | par fwd | fwd speedup |" in table
    for name in NEURONS:
        assert f"| {name} | 16 |" in table and f"| {name} | 33 |" in table
    assert "PSN / DSN time ratio" in table and "25.6x" in table
    assert "Not timed:" in table and "dsn L=33 sequential forward_backward: skipped: too slow" in table
    assert f"{speedups[('dsn', 16)]['forward_backward']:.2f}x" in table


def test_unavailable_and_broken_neurons_are_reported(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(NEURONS, "ghost", "lra_snn.neurons.ghost_not_written:Ghost")
    monkeypatch.setitem(NEURONS, "broken", "lra_snn.neurons.base:Neuron")  # abstract: fails to build
    code, result, table = run(tmp_path, capsys, "--neurons", "ghost,broken,sliding_psn")
    status = {(r["neuron"], r["length"]): (r["status"], r["reason"]) for r in result["records"]}
    assert status[("ghost", 16)][0] == "unavailable"
    assert "No module named 'lra_snn.neurons.ghost_not_written'" in status[("ghost", 16)][1]
    assert status[("broken", 33)][0] == "error" and "does not implement" in status[("broken", 33)][1]
    assert status[("sliding_psn", 16)][0] == "ok"
    assert result["summary"]["psn_over_dsn"] == []
    assert "| ghost | 16 | unavailable | unavailable |" in table and "| broken | 16 | error |" in table
    assert code == 1  # a broken neuron fails the run


def test_slow_sequential_loops_are_skipped_with_a_reason(tmp_path, capsys):
    small = ["--neurons", "sliding_psn", "--batch", "1", "--d-model", "1", "--max-seq-length", "1000000"]
    # a loop step costs microseconds: 3 calls at L = 10^6 scaled from L = 16 exceed 5 s
    code, result, table = run(tmp_path / "scaled", capsys, *small, "--lengths", "16,1000000", "--seq-budget-s", "5")
    by_key = bench.index_records(result["records"])
    assert by_key[("sliding_psn", "sequential", "forward", 16)]["status"] == "ok"
    scaled = by_key[("sliding_psn", "sequential", "forward", 1_000_000)]
    assert scaled["status"] == "skipped" and "scaled from L=16" in scaled["reason"]
    assert by_key[("sliding_psn", "parallel", "forward", 1_000_000)]["status"] == "ok"
    code, result, table = run(tmp_path / "tiny_budget", capsys, *small, "--lengths", "16,33", "--seq-budget-s", "1e-9")
    by_key = bench.index_records(result["records"])
    assert "one call took" in by_key[("sliding_psn", "sequential", "forward_backward", 16)]["reason"]
    assert "already at L=16" in by_key[("sliding_psn", "sequential", "forward_backward", 33)]["reason"]
    assert "--seq-budget-s=1e-09" in table and code == 0
    code, result, table = run(tmp_path / "chosen", capsys, *small, "--lengths", "7,16,33", "--seq-lengths", "7,33")
    by_key = bench.index_records(result["records"])
    assert [by_key[("sliding_psn", "sequential", "forward", n)]["status"] for n in (7, 16, 33)] == \
        ["ok", "skipped", "ok"]
    assert by_key[("sliding_psn", "sequential", "forward", 16)]["reason"] == "skipped: not in --seq-lengths=7,33"
    assert by_key[("sliding_psn", "parallel", "forward", 16)]["status"] == "ok"


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--neurons", "lif,nonsense"])
    assert "unknown neuron(s) ['nonsense']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--lengths", "16,x"])
    assert "comma-separated integers" in capsys.readouterr().err
