"""End-to-end run of the neuron speed benchmark (``python -m lra_snn.cli.bench``) on tiny sizes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from lra_snn.cli import bench
from lra_snn.neurons import NEURONS, neuron_class

TINY = [
    "--lengths",
    "16,33",
    "--repeats",
    "2",
    "--warmup",
    "1",
    "--batch",
    "2",
    "--d-model",
    "4",
    "--max-seq-length",
    "16",
    "--psn-max-t",
    "20",
    "--psn-k",
    "3",
    "--stream-chunks",
    "1,3",
    "--matmul-size",
    "8",
]
ENV_FIELDS = ("device", "device_name", "torch", "python", "threads", "batch", "d_model", "dtype")


def run(tmp_path, capsys, *extra: str):
    """Run the benchmark; the later of repeated options wins, so ``extra`` overrides TINY."""
    code = bench.main([*TINY, "--out", str(tmp_path), *extra])
    (path,) = tmp_path.glob("bench_cpu_*.json")
    return code, json.loads(path.read_text()), capsys.readouterr().out


def test_benchmark_all_registered_neurons(tmp_path, capsys):
    code, result, table = run(tmp_path, capsys)
    records = result["records"]
    assert len(records) == len(NEURONS) * 2 * 3 * 2  # neuron x L x implementation (with compiled) x pass
    assert {r["neuron"] for r in records} == set(NEURONS)
    for r in records:
        assert {f: r[f] for f in ENV_FIELDS} == {f: result["meta"][f] for f in ENV_FIELDS}
        assert (r["batch"], r["d_model"], r["dtype"], r["device"]) == (2, 4, "float32", "cpu")
    by_key = bench.index_records(records)
    available = {r["neuron"] for r in records if r["status"] != "unavailable"}
    for r in records:
        if r["status"] == "unavailable" and r["implementation"] != "compiled":
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

    for name in available:  # the compiled loops run where the neuron has them, and say so where not
        compiled = by_key[(name, "compiled", "forward_backward", 16)]
        if "compiled" in neuron_class(name).supported_backends:
            assert compiled["status"] == "ok", compiled
        else:
            assert (compiled["status"], compiled["reason"]) == ("unavailable", f"{name} has no compiled path")
    copy16 = {c["length"]: c for c in result["summary"]["copy"]}[16]
    assert 0 < copy16["min_s"] <= copy16["median_s"]
    multiples = {(e["neuron"], e["length"], e["implementation"]): e for e in result["summary"]["multiples_of_copy"]}
    lif_par = by_key[("lif", "parallel", "forward", 16)]
    assert multiples[("lif", 16, "parallel")]["forward"] == pytest.approx(lif_par["median_s"] / copy16["median_s"])
    assert multiples[("psn", 33, "parallel")]["forward"] is None  # skipped: T above the cap
    assert "Time as multiples of a copy" in table and "| parallel fwd | parallel fwd+bwd | compiled fwd |" in table
    assert f"{multiples[('lif', 16, 'parallel')]['forward']:.2f}x" in table

    matmul = result["summary"]["matmul"]
    assert matmul["size"] == 8 and matmul["multiply_adds_per_s"] == pytest.approx(8**3 / matmul["median_s"])
    assert by_key[("sliding_psn", "parallel", "forward", 16)]["multiply_adds"] == 2 * 16 * 4 * 3  # B L D k
    assert by_key[("lif", "compiled", "forward", 33)]["multiply_adds"] == 2 * 33 * 4 * 1
    assert by_key[("psn", "parallel", "forward", 16)]["multiply_adds"] == 2 * 16 * 4 * 16  # T = L = 16 per step
    copy_time = {c["length"]: c["median_s"] for c in result["summary"]["copy"]}
    priced = {(e["neuron"], e["length"]) for e in result["summary"]["multiples_of_matmul"]}
    for (name, implementation, pass_name, length), r in by_key.items():
        if r.get("multiply_adds") is not None and implementation == "parallel" and pass_name == "forward":
            arithmetic = r["multiply_adds"] / matmul["multiply_adds_per_s"] > copy_time[length]
            assert ((name, length) in priced) == arithmetic, (name, length)
    for e in result["summary"]["multiples_of_matmul"]:
        product_s = e["multiply_adds"] / matmul["multiply_adds_per_s"]
        assert e["product_ms"] == pytest.approx(1e3 * product_s)
        timed = by_key[(e["neuron"], e["implementation"], "forward_backward", e["length"])]
        if timed["status"] == "ok":
            assert e["forward_backward"] == pytest.approx(timed["median_s"] / (3 * product_s))

    streams = {(r["neuron"], r["length"], r["chunk"]): r for r in result["summary"]["streaming"]}
    assert {name for name, _, _ in streams} == {n for n in NEURONS if not neuron_class(n).fixed_length}
    lif16 = streams[("lif", 16, 3)]
    assert lif16["status"] == "ok" and lif16["channel_steps_per_s"] == pytest.approx(2 * 4 * 16 / lif16["median_s"])
    assert lif16["seconds_per_chunk"] == pytest.approx(lif16["median_s"] / 6)  # 16 steps in chunks of 3: 6 calls
    assert streams[("lif", 16, 1)]["seconds_per_chunk"] == pytest.approx(streams[("lif", 16, 1)]["median_s"] / 16)
    assert streams[("lif", 33, 1)]["reason"] == "skipped: too slow (L=33 > --max-seq-length=16)"
    assert "| lif | 16 | 3 |" in table and "Streaming (the step form over chunks" in table

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
    status = {
        (r["neuron"], r["length"]): (r["status"], r["reason"])
        for r in result["records"]
        if r["implementation"] == "parallel"
    }
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
    assert [by_key[("sliding_psn", "sequential", "forward", n)]["status"] for n in (7, 16, 33)] == [
        "ok",
        "skipped",
        "ok",
    ]
    assert by_key[("sliding_psn", "sequential", "forward", 16)]["reason"] == "skipped: not in --seq-lengths=7,33"
    assert by_key[("sliding_psn", "parallel", "forward", 16)]["status"] == "ok"


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--neurons", "lif,nonsense"])
    assert "unknown neuron(s) ['nonsense']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--lengths", "16,x"])
    assert "comma-separated integers" in capsys.readouterr().err


def test_cases_over_the_memory_limit_are_skipped_with_the_estimate(tmp_path, capsys):
    """A limit below every estimate skips every measurement before it runs, saying why."""
    code, result, table = run(tmp_path, capsys, "--neurons", "lif,psn", "--memory-limit-gb", "1e-6")
    assert result["meta"]["memory_limit_gib"] == pytest.approx(1e-6)
    for r in result["records"]:
        if r["implementation"] == "sequential" and r["length"] == 33:
            continue  # skipped earlier, by --max-seq-length
        if r["neuron"] == "psn" and r["length"] == 33:
            continue  # refused by the neuron (T > --psn-max-t)
        if r["implementation"] == "compiled" and "compiled" not in neuron_class(r["neuron"]).supported_backends:
            continue  # no compiled loop behind this neuron
        assert r["status"] == "skipped" and "would not fit in memory" in r["reason"], r
        assert r["memory_estimate_gib"] > 1e-6 and "--memory-limit-gb" in r["reason"]
    assert "would not fit in memory (estimated peak" in table and code == 0


def test_cases_under_the_memory_limit_run_and_record_the_estimate(tmp_path, capsys):
    code, result, _ = run(tmp_path, capsys, "--neurons", "sliding_psn", "--memory-limit-gb", "64")
    timed = [r for r in result["records"] if r["status"] == "ok"]
    assert timed and all(0 < r["memory_estimate_gib"] < 64 for r in timed) and code == 0


def test_graph_bytes_counts_each_saved_storage_once():
    x = torch.randn(4, 8, requires_grad=True)
    weight = torch.randn(8, 8, requires_grad=True)

    def forward() -> torch.Tensor:
        y = x @ weight  # saves x and weight
        return (y * y).sum(0)  # saves y (twice: one storage)

    assert bench.graph_bytes(forward) == 4 * (x.numel() + weight.numel() + 4 * 8 + 8)


def test_peak_estimate_extrapolates_linear_and_quadratic_growth():
    assert bench.extrapolate({64: 640, 128: 1280, 256: 2560}, 4096) == pytest.approx(40960)
    assert bench.extrapolate({64: 64**2 + 5, 128: 128**2 + 5, 256: 256**2 + 5}, 1000) == pytest.approx(1e6 + 5)
    assert bench.extrapolate({64: 100, 128: 190, 256: 330}, 1024) <= 330 * 1024 / 256  # no negative curvature

    def build(length: int):
        weight = torch.randn(length, length, requires_grad=True)  # a PSN-like T x T parameter
        return (lambda x: torch.einsum("tj,bjd->btd", weight, x)), [weight]

    train = bench.estimate_peak_bytes(build, 1024, 2, 3, torch.float32, "forward_backward", torch.device("cpu"))
    forward = bench.estimate_peak_bytes(build, 1024, 2, 3, torch.float32, "forward", torch.device("cpu"))
    assert train >= 2.5 * 1024**2 * 4 and forward >= 1024**2 * 4


def test_the_limit_defaults_to_a_fraction_of_the_available_memory(monkeypatch):
    monkeypatch.setattr(bench, "available_bytes", lambda: 10 * 2**30)
    assert bench.memory_limit_bytes(bench.BenchConfig(neurons=[], lengths=[])) == pytest.approx(8 * 2**30)
    assert bench.memory_limit_bytes(bench.BenchConfig(neurons=[], lengths=[], memory_limit_gb=2)) == 2 * 2**30
    monkeypatch.setattr(bench, "available_bytes", lambda: None)
    assert bench.memory_limit_bytes(bench.BenchConfig(neurons=[], lengths=[])) == float("inf")
    assert bench.available_bytes.__name__  # the real reader is exercised by every run above


def test_neurons_whose_multiply_adds_outlast_the_copy_are_priced_against_a_matrix_product():
    """At 10^9 multiply-adds/s and a copy of 1 ms: 4 * 10^6 multiply-adds (4 ms) are priced, forward
    against 4 ms and forward + backward against 12 ms; 10^6 (1 ms, not above the copy) are not."""
    config = bench.BenchConfig(neurons=["sliding_psn", "lif"], lengths=[64], device="cuda")  # no compiled column
    work = {"sliding_psn": 4_000_000, "lif": 1_000_000}
    records = [
        {"neuron": n, "implementation": i, "pass": p, "length": 64, "status": "ok", "median_s": t, "multiply_adds": w}
        for n, w in work.items()
        for i, p, t in (
            ("sequential", "forward", 1.0),
            ("parallel", "forward", 0.008),
            ("parallel", "forward_backward", 0.06),
        )
    ]
    limits = {"copy": [{"length": 64, "median_s": 1e-3}], "matmul": {"size": 8, "multiply_adds_per_s": 1e9}}
    (entry,) = bench.multiples_of_matmul(records, limits, config)
    assert (entry["neuron"], entry["implementation"], entry["product_ms"]) == (
        "sliding_psn",
        "parallel",
        pytest.approx(4.0),
    )
    assert entry["forward"] == pytest.approx(2.0) and entry["forward_backward"] == pytest.approx(5.0)
    summary = bench.summarize(records, config, limits)
    table = bench.matmul_table(summary)
    assert table.splitlines()[2:] == [
        "| neuron | L | multiply-adds | product ms | parallel fwd | parallel fwd+bwd |",
        "|---|---:|---:|---:|---:|---:|",
        "| sliding_psn | 64 | 4e+06 | 4 | 2.00x | 5.00x |",
    ]
    assert (
        table.splitlines()[0].endswith(
            "8 x 8 matrices in this run, 1 G multiply-adds/s; neurons whose multiply-adds take longer than the copy:"
        )
        and table.splitlines()[1] == ""
    )
    assert "| sliding_psn | 64 | 4e+06 | 4 | 2.00x | 5.00x |" in table and "| lif |" not in table
    assert "1 G multiply-adds/s" in table


def test_growth_slope_is_fitted_over_the_long_lengths():
    config = bench.BenchConfig(neurons=["dsn"], lengths=[1024, 4096, 8192, 16384], device="cuda")  # no compiled
    times = {1024: 1.0, 4096: 3.0, 8192: 6.0, 16384: 12.0}  # linear from 4096 on
    records = [
        {"neuron": "dsn", "implementation": i, "pass": p, "length": n, "status": "ok", "median_s": t}
        for i in bench.IMPLEMENTATIONS
        for p in bench.PASSES
        for n, t in times.items()
    ]
    (entry,) = bench.growth_slopes(bench.index_records(records), config)
    assert entry["implementation"] == "parallel" and entry["lengths"] == [4096, 8192, 16384]
    assert entry["forward"] == pytest.approx(1.0) and entry["forward_backward"] == pytest.approx(1.0)
    records[-1]["status"] = "skipped"  # two lengths left: still a slope; one: none
    records[-2]["status"] = "skipped"
    (entry,) = bench.growth_slopes(bench.index_records(records), config)
    assert entry["forward"] == pytest.approx(1.0) and entry["forward_backward"] is None


def test_peer_benchmark_runs_every_section_on_tiny_shapes(tmp_path, capsys, monkeypatch):
    """benchmarks/peers.py end to end: pairs checked equal, both passes timed, JSON and markdown written."""
    pytest.importorskip("spikingjelly.activation_based.neuron", reason="spikingjelly is not installed")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import peers

    code = peers.main(
        [
            "--shapes",
            "2x4",
            "--lengths",
            "9,33",
            "--d-state",
            "4",
            "--train-lengths",
            "8",
            "--train-steps",
            "3",
            "--train-rounds",
            "2",
            "--repeats",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    (path,) = tmp_path.glob("peers_*.json")
    records = json.loads(path.read_text())["records"]
    names = {r["name"] for r in records}
    assert names == {*peers.NEURONS, "s4d_layer", "s4d_block", "mini_step_lif_ssm"} and code == 0
    for r in records:
        assert r["status"] == "ok" and r["ratio"] > 0 and r["ours"]["median_s"] > 0, r
        if r["section"] == "neuron":
            assert r["check"]["float64_rows_equal"] and r["check"]["float32_differing_fraction"] == 0
    table = path.with_suffix(".md").read_text()
    assert "| lif | 2x4 | 33 | forward_backward |" in table and "Behind the target:" in table
    assert table.strip() in capsys.readouterr().out


def test_peer_benchmark_skips_what_would_not_fit(tmp_path, capsys, monkeypatch):
    pytest.importorskip("spikingjelly.activation_based.neuron", reason="spikingjelly is not installed")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import peers

    peers.main(
        [
            "--sections",
            "neurons,s4d",
            "--neurons",
            "psn",
            "--shapes",
            "2x4",
            "--lengths",
            "9",
            "--memory-limit-gb",
            "1e-6",
            "--out",
            str(tmp_path),
        ]
    )
    records = json.loads(next(tmp_path.glob("peers_*.json")).read_text())["records"]
    assert records and all(r["status"] == "skipped" and "> limit" in r["reason"] for r in records)
    assert "skipped" in capsys.readouterr().out


def test_help_prints_every_option(capsys):
    """``--help`` renders every option's help text (argparse formats it with %, so a bare % breaks it)."""
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "of MemAvailable at start" in capsys.readouterr().out


def test_the_step_profile_charges_each_part_its_own_time(tmp_path, capsys, monkeypatch):
    """benchmarks/profile_step.py: a neuron made 30 ms slower per call shows up in the neuron's part."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import profile_step

    from lra_snn.neurons.lif import DecoupledResetLIF as LIF

    original = LIF.forward
    calls = []

    def slow_forward(self, x):
        calls.append(1)
        time.sleep(0.03)
        return original(self, x)

    monkeypatch.setattr(LIF, "forward", slow_forward)
    argv = ["--models", "lif_ssm,s4d", "--profile", "tiny", "--steps", "2", "--warmup", "1", "--out", str(tmp_path)]
    assert profile_step.main(argv) == 0
    (path,) = tmp_path.glob("profile_step_*.json")
    lif_ssm, s4d = json.loads(path.read_text())["results"]
    calls_per_step = len(calls) / (1 + 2 + 2)  # warm-up, then the steps without and with the hooks
    assert calls_per_step >= 1
    assert lif_ssm["parts_ms"]["neuron"] >= 30 * calls_per_step
    assert lif_ssm["parts_ms"]["S4D convolution"] < 30 * calls_per_step  # the sleep is not charged elsewhere
    assert "neuron" not in s4d["parts_ms"] and s4d["parts_ms"]["S4D convolution"] > 0
    for result in (lif_ssm, s4d):
        assert sum(result["parts_ms"].values()) == pytest.approx(result["step_ms"])
        assert result["parts_ms"]["optimizer"] > 0
    assert "| lif_ssm |" in capsys.readouterr().out
