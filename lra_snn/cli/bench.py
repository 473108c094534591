"""Neuron speed benchmark: the sequential loop against the parallel form (docs/kernels.md, "Benchmark protocol").

For each registered neuron and each length L, times ``forward_sequential`` (the plain time loop,
the definition), ``forward`` on the PyTorch backend (the parallel training form), on CPU tensors
``forward`` on the compiled backend (numba time loops, ``lra_snn.ops``) where the neuron has one, and
with ``--triton`` also ``forward`` through the Triton kernels (CUDA, or the interpreter), forward
alone (inference, no autograd) and forward + backward (a training step), after warm-up; reports
median and spread, each time as a multiple of the machine's limit for the same data (a copy of the
input into an output of its size, ``y.copy_(x)``, timed at each L in the same run; for a neuron whose
multiply-adds take longer than that copy at the machine's rate, also a multiple of the time a matrix
product needs for them, at the rate of an n x n x n ``torch.mm`` timed in the same run), and the step
form reading the input as a stream in chunks (``--stream-chunks``; streaming inference),
the sequential/parallel speedups (the PRF paper reports 6.57x for LIF at L = 1,024), and the
PSN/DSN training-time ratio at equal L (the DSN paper, arXiv 2602.01133, reports 25.6x at 16,384),
and the growth of each parallel form's time with L (the slope of log time over log L from 4,096 up).
Before each measurement its peak memory is estimated (``estimate_peak_bytes``) and a case that would
not fit under ``--memory-limit-gb`` (default: 80 % of the memory available at start) is skipped, with
the estimate and the limit in its reason. Writes JSON records under ``--out`` and prints markdown tables.

    python -m lra_snn.cli.bench [--neurons lif,dsn] [--lengths 256,1024,4096] [--device cuda]
                            [--triton] [--memory-limit-gb 16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lra_snn.neurons import NEURONS, Neuron, neuron_class
from lra_snn.ops.dispatch import CompiledUnavailable, TritonUnavailable

IMPLEMENTATIONS = ("sequential", "parallel")  # always timed; "compiled" too on the CPU, "triton" with --triton
BACKEND_OF = {"sequential": "torch", "parallel": "torch", "compiled": "compiled", "triton": "triton"}
PASSES = ("forward", "forward_backward")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
PAPER_PSN_OVER_DSN = "25.6x at L = 16,384 (DSN paper, training)"
PROBE_LENGTHS = (64, 128, 256)  # the memory estimate counts the tensors of these lengths and extrapolates
GROWTH_FROM = 4096  # the growth slope is fitted over the lengths from here up
AVAILABLE_FRACTION = 0.8  # default memory limit: this fraction of MemAvailable at start


@dataclass
class BenchConfig:
    """What to run: neurons, lengths, shapes, repetitions, device and the limits on slow runs."""

    neurons: list[str]
    lengths: list[int]
    batch: int = 8
    d_model: int = 64
    repeats: int = 5
    warmup: int = 1
    device: str = "cpu"
    dtype: str = "float32"
    max_seq_length: int = 4096
    seq_lengths: list[int] | None = None  # the only lengths with a sequential loop timed (None: all)
    seq_budget_s: float = 20.0
    threads: int = 0
    psn_k: int = 32
    psn_max_t: int = 4096
    seed: int = 0
    out: Path = Path("results/bench")
    triton: bool = False
    memory_limit_gb: float | None = None  # None: AVAILABLE_FRACTION of MemAvailable when the run starts
    stream_chunks: list[int] = field(default_factory=lambda: [1, 256])  # steps per call of the step form
    matmul_size: int = 1024  # n of the n x n x n matrix product whose rate prices a neuron's multiply-adds


def neuron_kwargs(cls: type[Neuron], length: int, config: BenchConfig) -> dict:
    """Constructor options at length L: the neuron's own (``options_at_length``: T = L for a
    fixed-length neuron), and ``--psn-k`` as ``k``, ``--psn-max-t`` as ``max_T`` where the
    constructor takes them (masked and sliding PSN; PSN and masked PSN)."""
    takes = inspect.signature(cls).parameters
    chosen = {key: value for key, value in (("k", config.psn_k), ("max_T", config.psn_max_t)) if key in takes}
    return {**chosen, **cls.options_at_length(length)}


def build_bench_neuron(cls: type[Neuron], length: int, config: BenchConfig) -> Neuron:
    """The neuron timed at length L (``neuron_kwargs``), with every training schedule at its end value:
    the masked PSN at lambda = 1 (fully masked, as from an eighth of its training on and at evaluation;
    while lambda < 1 it costs what the PSN costs)."""
    neuron = cls(d_model=config.d_model, **neuron_kwargs(cls, length, config))
    for attribute in neuron.schedules:
        setattr(neuron, attribute, 1.0)
    return neuron


def device_name(device: torch.device) -> str:
    """A readable name of the device: the GPU model, or the CPU model from /proc/cpuinfo."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


def device_slug(name: str) -> str:
    """A file-name-safe form of a device name (for result file names)."""
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def time_once(fn: Callable[[], None], device: torch.device) -> float:
    """Wall time of one call in seconds (CUDA events around it on a GPU)."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / 1000.0
    begin = time.perf_counter()
    fn()
    return time.perf_counter() - begin


def spread(times: list[float]) -> dict:
    """Median, quartiles and range of a list of timings (seconds)."""
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return {
        "median_s": float(median),
        "q1_s": float(q1),
        "q3_s": float(q3),
        "min_s": float(min(times)),
        "max_s": float(max(times)),
    }


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is no such file)."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def memory_limit_bytes(config: BenchConfig) -> float:
    """The memory a measurement may use: ``--memory-limit-gb``, else a fraction of what is available."""
    if config.memory_limit_gb is not None:
        return config.memory_limit_gb * 2**30
    available = available_bytes()
    return math.inf if available is None else AVAILABLE_FRACTION * available


def graph_bytes(run: Callable[[], Tensor]) -> int:
    """Bytes of the distinct storages that ``run()`` keeps for its backward (the tensors autograd saves,
    counted once per storage) and of its output: what a forward holds until its backward has run."""
    kept: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    def unpack(tensor: Tensor) -> Tensor:
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        output = run()
    kept[output.untyped_storage().data_ptr()] = output.untyped_storage().nbytes()
    return sum(kept.values())


def extrapolate(counts: dict[int, int], length: int) -> float:
    """``a + b L + c L^2`` through counts at three lengths (a PSN keeps T x T weights), at ``length``;
    a negative curvature (rounding) is replaced by a straight line through the counts."""
    lengths = np.array(sorted(counts), dtype=np.float64)
    values = np.array([counts[n] for n in sorted(counts)], dtype=np.float64)
    coefficients = np.polyfit(lengths, values, 2)
    if coefficients[0] < 0:
        coefficients = np.polyfit(lengths, values, 1)
    return float(np.polyval(coefficients, length))


def estimate_peak_bytes(
    build: Callable[[int], tuple[Callable[[Tensor], Tensor], list[Tensor]]],
    length: int,
    batch: int,
    channels: int,
    dtype: torch.dtype,
    pass_name: str,
    device: torch.device,
) -> float:
    """Peak memory of one measurement at ``length``, estimated from small copies of it.

    ``build(L)`` returns the function timed (input -> output) and its parameters at length L. At each
    of ``PROBE_LENGTHS`` the parameters are counted and the forward runs once with autograd, counting
    the bytes it keeps for the backward (``graph_bytes``); quadratics through the three counts give
    both at ``length``. A training step holds that graph and, while its backward runs, gradients and
    temporaries of about the same size: 2.5 graphs, plus three inputs' worth (input, gradient, output
    gradient). Against the peak RSS growth of real training steps (B = 8, D = 64, L up to 16,384) this
    came out 0.94-1.15x for the parallel forms and 1.8-2.6x for the sequential loops (overestimated).
    A forward without autograd holds the parameters, its output and a few temporaries of the input's
    size: four inputs' worth.
    """
    data = batch * length * channels * torch.empty((), dtype=dtype).element_size()
    graph: dict[int, int] = {}
    weights: dict[int, int] = {}
    for probe in PROBE_LENGTHS:
        run, parameters = build(probe)
        weights[probe] = sum(p.numel() * p.element_size() for p in parameters)
        if pass_name == "forward_backward":
            x = torch.randn(batch, probe, channels, device=device, dtype=dtype, requires_grad=True)
            graph[probe] = graph_bytes(partial(run, x))
    if pass_name == "forward":
        return 4 * data + extrapolate(weights, length)
    return 2.5 * extrapolate(graph, length) + 3 * data


def make_pass(neuron, implementation: str, pass_name: str, x: torch.Tensor, grad: torch.Tensor):
    """A no-argument callable running one forward (no autograd) or one forward + backward."""
    run = neuron.forward_sequential if implementation == "sequential" else neuron.forward

    def forward() -> None:
        with torch.no_grad():
            run(x)

    def forward_backward() -> None:
        neuron.zero_grad(set_to_none=True)
        x.grad = None
        run(x).backward(grad)

    return forward if pass_name == "forward" else forward_backward


def seq_skip_reason(length: int, config: BenchConfig, shorter: dict | None) -> str | None:
    """Why the sequential loop is not timed at this length, or None.

    ``shorter`` is the same measurement at the previous (shorter) length: the loop's time grows
    at least linearly in L, so that time scaled by the length ratio is a lower bound here.
    """
    if length > config.max_seq_length:
        return f"skipped: too slow (L={length} > --max-seq-length={config.max_seq_length})"
    if config.seq_lengths is not None and length not in config.seq_lengths:
        return f"skipped: not in --seq-lengths={','.join(map(str, config.seq_lengths))}"
    if shorter is None:
        return None
    if shorter["status"] == "skipped" and shorter["reason"].startswith("skipped: too slow"):
        return f"skipped: too slow (already at L={shorter['length']})"
    if shorter["status"] == "ok":
        per_call = shorter["median_s"] * length / shorter["length"]
        if per_call * (config.warmup + config.repeats) > config.seq_budget_s:
            return (
                f"skipped: too slow (>= {per_call:.2g} s per call, scaled from L={shorter['length']}; "
                f"{config.warmup + config.repeats} calls exceed --seq-budget-s={config.seq_budget_s:g})"
            )
    return None


def measure(
    fn: Callable[[], None], config: BenchConfig, device: torch.device, budget_s: float | None
) -> tuple[list[float], str | None]:
    """Warm up, then time ``repeats`` calls; give up (with a reason) when the warm-up shows the
    whole measurement would exceed ``budget_s``."""
    calls = config.warmup + config.repeats
    for _ in range(config.warmup):
        elapsed = time_once(fn, device)
        if budget_s is not None and elapsed * calls > budget_s:
            return [], (
                f"skipped: too slow (one call took {elapsed:.2g} s; {calls} calls exceed --seq-budget-s={budget_s:g})"
            )
    return [time_once(fn, device) for _ in range(config.repeats)], None


def allocator_settings() -> dict[str, str]:
    """The glibc malloc settings of this process (``MALLOC_*`` variables; docs/kernels.md, "Allocator")."""
    return {key: value for key, value in sorted(os.environ.items()) if key.startswith("MALLOC_")}


def runtime(device: torch.device) -> dict:
    """Where a measurement ran: device, its name, library versions and torch threads."""
    return {
        "device": device.type,
        "device_name": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }


def environment(device: torch.device, config: BenchConfig) -> dict:
    """Fields shared by every record: ``runtime``, shapes and dtype."""
    return {**runtime(device), "batch": config.batch, "d_model": config.d_model, "dtype": config.dtype}


def memory_skip_reason(estimate: Callable[[], float], limit: float) -> tuple[str | None, float | None]:
    """Why a measurement is not run for lack of memory (or None), and its estimated peak in bytes."""
    if math.isinf(limit):
        return None, None
    need = estimate()
    if need <= limit:
        return None, need
    return (
        f"skipped: would not fit in memory (estimated peak {need / 2**30:.1f} GiB > limit "
        f"{limit / 2**30:.1f} GiB; --memory-limit-gb sets the limit)"
    ), need


def bench_one(
    neuron,
    implementation: str,
    pass_name: str,
    x: torch.Tensor,
    grad: torch.Tensor,
    config: BenchConfig,
    device: torch.device,
    shorter: dict | None,
    estimate: Callable[[], float],
    limit: float,
) -> dict:
    """Status and timings of one measurement; ``shorter`` is the same one at the previous length,
    ``estimate()`` its peak memory in bytes, ``limit`` the most it may use."""
    budget = None
    if implementation == "sequential":
        skip = seq_skip_reason(length=x.shape[1], config=config, shorter=shorter)
        if skip is not None:
            return {"status": "skipped", "reason": skip}
        budget = config.seq_budget_s
    try:
        skip, need = memory_skip_reason(estimate, limit)
        memory = {} if need is None else {"memory_estimate_gib": need / 2**30}
        if skip is not None:
            return {"status": "skipped", "reason": skip, **memory}
        times, skip = measure(make_pass(neuron, implementation, pass_name, x, grad), config, device, budget)
    except (TritonUnavailable, CompiledUnavailable) as err:
        return {"status": "unavailable", "reason": str(err)}
    except Exception as err:  # a failing neuron is reported, and the run goes on to the others
        return {"status": "error", "reason": f"{type(err).__name__}: {err}"}
    if skip is not None:
        return {"status": "skipped", "reason": skip, **memory}
    rate = neuron.firing_rate
    return {
        "status": "ok",
        "reason": "",
        "times_s": times,
        **spread(times),
        "firing_rate": None if rate is None else float(rate),
        **memory,
    }


def implementations_of(config: BenchConfig) -> tuple[str, ...]:
    """The implementations timed: sequential and parallel, the compiled loops on the CPU, triton when asked for."""
    compiled = ("compiled",) if torch.device(config.device).type == "cpu" else ()
    return (*IMPLEMENTATIONS, *compiled, *(("triton",) if config.triton else ()))


def time_copy(length: int, config: BenchConfig, device: torch.device) -> dict:
    """Median and spread of ``y.copy_(x)`` for an input of the timed shape at ``length``: reading the
    input and writing an output of its size once, the least any neuron's forward can do."""
    x = torch.randn(config.batch, length, config.d_model, device=device, dtype=DTYPES[config.dtype])
    y = torch.empty_like(x)

    def copy() -> None:
        y.copy_(x)

    times, _ = measure(copy, config, device, None)
    return {"length": length, **spread(times)}


def time_matmul(config: BenchConfig, device: torch.device) -> dict:
    """Median and spread of ``torch.mm`` of two n x n matrices (n = ``matmul_size``) in the timed dtype,
    and its rate in multiply-adds per second: what the machine does when the work is a matrix product."""
    n = config.matmul_size
    a, b = (torch.randn(n, n, device=device, dtype=DTYPES[config.dtype]) for _ in range(2))
    out = torch.empty_like(a)

    def product() -> None:
        torch.mm(a, b, out=out)

    times, _ = measure(product, config, device, None)
    timed = spread(times)
    return {"size": n, **timed, "multiply_adds_per_s": n**3 / timed["median_s"]}


def builder(
    cls: type[Neuron], implementation: str, config: BenchConfig, device: torch.device
) -> Callable[[int], tuple[Callable[[Tensor], Tensor], list[Tensor]]]:
    """``build(L)``: a fresh neuron at length L (seeded as the timed one; a cap on T raised to L), as the
    function an implementation times and its parameters; what ``estimate_peak_bytes`` probes."""

    def build(length: int) -> tuple[Callable[[Tensor], Tensor], list[Tensor]]:
        torch.manual_seed(config.seed)
        neuron = build_bench_neuron(cls, length, replace(config, psn_max_t=max(config.psn_max_t, length)))
        neuron.backend = BACKEND_OF[implementation]
        neuron = neuron.to(device=device, dtype=DTYPES[config.dtype])
        run = neuron.forward_sequential if implementation == "sequential" else neuron.forward
        return run, list(neuron.parameters())

    return build


def bench_neuron_length(
    name: str,
    length: int,
    config: BenchConfig,
    device: torch.device,
    env: dict,
    shorter: dict[tuple, dict],
    limit: float = math.inf,
) -> list[dict]:
    """The records (implementations x forward/forward_backward) of one neuron at one L.

    ``shorter`` holds this neuron's records at the previous length, keyed by (implementation, pass);
    ``limit`` is the memory in bytes a measurement may use (``memory_limit_bytes``).
    """
    base = {"neuron": name, "length": length, **env}
    implementations = implementations_of(config)

    def records_with(status: str, reason: str) -> list[dict]:
        return [
            {**base, "implementation": i, "pass": p, "status": status, "reason": reason}
            for i in implementations
            for p in PASSES
        ]

    try:
        cls = neuron_class(name)
    except (ImportError, AttributeError) as err:
        return records_with("unavailable", f"not importable: {type(err).__name__}: {err}")
    except TypeError as err:  # registered, but not a complete Neuron
        return records_with("error", f"{type(err).__name__}: {err}")
    dtype = DTYPES[config.dtype]
    neurons: dict[str, Neuron | None] = {}
    for implementation in implementations:
        backend = BACKEND_OF[implementation]
        if backend not in cls.supported_backends:
            neurons[implementation] = None  # no kernel of this backend behind this neuron
            continue
        torch.manual_seed(config.seed)  # the same parameters for every implementation
        try:
            neuron = build_bench_neuron(cls, length, config)
            neuron.backend = backend
            neurons[implementation] = neuron.to(device=device, dtype=dtype)
        except ValueError as err:  # a documented refusal, e.g. the PSN's cap on T
            return records_with("skipped", f"skipped: {err}")
        except Exception as err:  # a broken neuron is reported, and the run goes on to the others
            return records_with("error", f"{type(err).__name__}: {err}")
    built = [neuron for neuron in neurons.values() if neuron is not None]
    if built:  # the dynamics' multiply-adds over the whole input, as serial inference computes them
        base["multiply_adds"] = config.batch * length * config.d_model * built[0].macs_per_step()
    x = torch.randn(config.batch, length, config.d_model, device=device, dtype=dtype, requires_grad=True)
    grad = torch.randn_like(x)
    records = []
    for i in implementations:
        for p in PASSES:
            if neurons[i] is None:
                result = {"status": "unavailable", "reason": f"{name} has no {BACKEND_OF[i]} path"}
            else:
                estimate = partial(
                    estimate_peak_bytes,
                    builder(cls, i, config, device),
                    length,
                    config.batch,
                    config.d_model,
                    dtype,
                    p,
                    device,
                )
                result = bench_one(neurons[i], i, p, x, grad, config, device, shorter.get((i, p)), estimate, limit)
            records.append({**base, "implementation": i, "pass": p, **result})
    return records


def index_records(records: list[dict]) -> dict[tuple, dict]:
    """Records keyed by (neuron, implementation, pass, length)."""
    return {(r["neuron"], r["implementation"], r["pass"], r["length"]): r for r in records}


def _median(index: dict[tuple, dict], key: tuple) -> float | None:
    record = index.get(key)
    return record["median_s"] if record is not None and record["status"] == "ok" else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return None if numerator is None or denominator is None else numerator / denominator


def multiples_of_copy(index: dict[tuple, dict], copies: list[dict], config: BenchConfig) -> list[dict]:
    """Per neuron, L and implementation other than the sequential loop: its median time over the
    copy's at that L, forward and forward + backward (None where either was not timed)."""
    copy_time = {c["length"]: c["median_s"] for c in copies}
    return [
        {
            "neuron": name,
            "length": length,
            "implementation": implementation,
            **{p: _ratio(_median(index, (name, implementation, p, length)), copy_time.get(length)) for p in PASSES},
        }
        for name in config.neurons
        for length in config.lengths
        for implementation in implementations_of(config)[1:]
    ]


MATMUL_PASSES = {"forward": 1, "forward_backward": 3}  # products per pass: the backward adds two (inputs, weights)


def multiples_of_matmul(records: list[dict], limits: dict, config: BenchConfig) -> list[dict]:
    """Per neuron, L and implementation other than the sequential loop, where the neuron's multiply-adds
    at the rate of ``limits["matmul"]`` take longer than the copy at that L (its work is arithmetic
    rather than memory): its median time over that product time, forward and forward + backward (three
    times the multiply-adds: the backward's products for the input and for the weights)."""
    index = index_records(records)
    rate = limits["matmul"]["multiply_adds_per_s"]
    copy_time = {c["length"]: c["median_s"] for c in limits["copy"]}
    multiples = []
    for name in config.neurons:
        for length in config.lengths:
            work = next((r.get("multiply_adds") for r in records if (r["neuron"], r["length"]) == (name, length)), None)
            if work is None or work / rate <= copy_time[length]:
                continue
            product_time = work / rate
            for implementation in implementations_of(config)[1:]:
                multiples.append(
                    {
                        "neuron": name,
                        "length": length,
                        "implementation": implementation,
                        "multiply_adds": work,
                        "product_ms": 1e3 * product_time,
                        **{
                            p: _ratio(_median(index, (name, implementation, p, length)), n * product_time)
                            for p, n in MATMUL_PASSES.items()
                        },
                    }
                )
    return multiples


def summarize(records: list[dict], config: BenchConfig, limits: dict) -> dict:
    """Speedups sequential/parallel per neuron and L, PSN/DSN (parallel forms) per L, and every
    parallel time as a multiple of the machine's limits (``limits``: the copy at each L and the matrix
    product's rate) for the same data and work."""
    copies = limits["copy"]
    index = index_records(records)
    speedups = []
    for name in config.neurons:
        for length in config.lengths:
            entry = {"neuron": name, "length": length}
            for pass_name in PASSES:
                entry[pass_name] = _ratio(
                    _median(index, (name, "sequential", pass_name, length)),
                    _median(index, (name, "parallel", pass_name, length)),
                )
            speedups.append(entry)
    psn_over_dsn = []
    if {"psn", "dsn"} <= set(config.neurons):
        for length in config.lengths:
            entry = {"length": length}
            for pass_name in PASSES:
                entry[pass_name] = _ratio(
                    _median(index, ("psn", "parallel", pass_name, length)),
                    _median(index, ("dsn", "parallel", pass_name, length)),
                )
            psn_over_dsn.append(entry)
    summary = {
        "speedup_sequential_over_parallel": speedups,
        "psn_over_dsn": psn_over_dsn,
        "psn_over_dsn_published": PAPER_PSN_OVER_DSN,
        "growth": growth_slopes(index, config),
        "copy": copies,
        "multiples_of_copy": multiples_of_copy(index, copies, config),
        "matmul": limits["matmul"],
        "multiples_of_matmul": multiples_of_matmul(records, limits, config),
    }
    if config.triton:
        summary.update(triton_speedups(index, config))
    return summary


def growth_slopes(index: dict[tuple, dict], config: BenchConfig) -> list[dict]:
    """Per neuron, parallel implementation and pass: the least-squares slope of log(median time) over
    log(L) at the lengths from ``GROWTH_FROM`` up (1 is linear in L; None with fewer than two)."""
    long = [n for n in config.lengths if n >= GROWTH_FROM]
    slopes = []
    for name in config.neurons:
        for implementation in implementations_of(config)[1:]:
            entry: dict = {"neuron": name, "implementation": implementation, "lengths": long}
            for pass_name in PASSES:
                points = [(n, _median(index, (name, implementation, pass_name, n))) for n in long]
                timed = [(n, t) for n, t in points if t is not None]
                logs = np.log(np.array(timed, dtype=np.float64)).T if len(timed) >= 2 else None
                entry[pass_name] = None if logs is None else float(np.polyfit(logs[0], logs[1], 1)[0])
            slopes.append(entry)
    return slopes


def triton_speedups(index: dict[tuple, dict], config: BenchConfig) -> dict:
    """Speedups of the Triton kernels over the sequential loop and the PyTorch parallel form,
    per neuron and L, and PSN (PyTorch) over DSN (Triton)."""
    over = []
    for name in config.neurons:
        for length in config.lengths:
            entry = {"neuron": name, "length": length}
            for pass_name in PASSES:
                triton = _median(index, (name, "triton", pass_name, length))
                entry[f"sequential_{pass_name}"] = _ratio(
                    _median(index, (name, "sequential", pass_name, length)), triton
                )
                entry[f"parallel_{pass_name}"] = _ratio(_median(index, (name, "parallel", pass_name, length)), triton)
            over.append(entry)
    psn_over_dsn = []
    if {"psn", "dsn"} <= set(config.neurons):
        for length in config.lengths:
            psn_over_dsn.append(
                {
                    "length": length,
                    **{
                        p: _ratio(
                            _median(index, ("psn", "parallel", p, length)), _median(index, ("dsn", "triton", p, length))
                        )
                        for p in PASSES
                    },
                }
            )
    return {"speedup_over_triton": over, "psn_over_dsn_triton": psn_over_dsn}


def _cell(index: dict[tuple, dict], key: tuple) -> str:
    r = index[key]
    if r["status"] == "ok":
        return f"{1e3 * r['median_s']:.3g} ({1e3 * (r['q3_s'] - r['q1_s']):.2g})"
    return r["status"]


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _fmt_slope(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown_table(records: list[dict], summary: dict, env: dict) -> str:
    """Timings (median ms, IQR in brackets), speedups, PSN/DSN ratios and the reasons for every gap."""
    index = index_records(records)
    lines = [
        f"Neuron timings on {env['device_name']} (torch threads: {env['threads']}), B={env['batch']}, "
        f"D={env['d_model']}, {env['dtype']}: median ms (interquartile range ms); "
        "forward without autograd, forward+backward a training step.",
        "",
        "| neuron | L | seq fwd | par fwd | fwd speedup | seq fwd+bwd | par fwd+bwd | fwd+bwd speedup |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in summary["speedup_sequential_over_parallel"]:
        name, length = entry["neuron"], entry["length"]
        cells = [_cell(index, (name, i, p, length)) for p in PASSES for i in IMPLEMENTATIONS]
        lines.append(
            f"| {name} | {length} | {cells[0]} | {cells[1]} | {_fmt_ratio(entry['forward'])} | "
            f"{cells[2]} | {cells[3]} | {_fmt_ratio(entry['forward_backward'])} |"
        )
    if summary["psn_over_dsn"]:
        lines += [
            "",
            f"PSN / DSN time ratio, parallel forms at equal L (published: {PAPER_PSN_OVER_DSN}):",
            "",
            "| L | PSN/DSN fwd | PSN/DSN fwd+bwd |",
            "|---:|---:|---:|",
        ]
        for entry in summary["psn_over_dsn"]:
            lines.append(
                f"| {entry['length']} | {_fmt_ratio(entry['forward'])} | {_fmt_ratio(entry['forward_backward'])} |"
            )
    if any(e["forward"] is not None or e["forward_backward"] is not None for e in summary["growth"]):
        lines += [
            "",
            f"Growth: slope of log(time) over log(L) for L >= {GROWTH_FROM} (1 = linear in L):",
            "",
            "| neuron | implementation | fwd | fwd+bwd |",
            "|---|---|---:|---:|",
        ]
        lines += [
            f"| {e['neuron']} | {e['implementation']} | {_fmt_slope(e['forward'])} | "
            f"{_fmt_slope(e['forward_backward'])} |"
            for e in summary["growth"]
        ]
    lines += ["", copy_table(summary)]
    if summary["multiples_of_matmul"]:
        lines += ["", matmul_table(summary)]
    if summary.get("streaming"):
        lines += ["", streaming_table(index, summary["streaming"], env)]
    if "speedup_over_triton" in summary:
        lines += ["", triton_table(index, summary)]
    gaps = [r for r in records if r["status"] != "ok"]
    if gaps:
        lines += ["", "Not timed:"]
        lines += [f"- {r['neuron']} L={r['length']} {r['implementation']} {r['pass']}: {r['reason']}" for r in gaps]
    return "\n".join(lines)


def _ratio_columns(entries: list[dict]) -> tuple[str, str, list[tuple[str, int, dict, str]]]:
    """For a table of multiples (``multiples_of_copy`` or ``multiples_of_matmul`` entries): the header and
    separator of the implementations' columns (forward, forward + backward each), and per (neuron, L) its
    first entry and its ratio cells."""
    implementations = list(dict.fromkeys(e["implementation"] for e in entries))
    cases: dict[tuple, dict[str, dict]] = {}
    for entry in entries:
        cases.setdefault((entry["neuron"], entry["length"]), {})[entry["implementation"]] = entry
    rows = [
        (
            name,
            length,
            next(iter(by.values())),
            " | ".join(_fmt_ratio(by[i][p]) for i in implementations for p in PASSES),
        )
        for (name, length), by in cases.items()
    ]
    header = " | ".join(f"{i} fwd | {i} fwd+bwd" for i in implementations)
    return header, "---:|" * (2 * len(implementations)), rows


def copy_table(summary: dict) -> str:
    """Each implementation's time as a multiple of a copy of its input into an output (``y.copy_(x)``)."""
    copy_ms = {c["length"]: 1e3 * c["median_s"] for c in summary["copy"]}
    header, separator, rows = _ratio_columns(summary["multiples_of_copy"])
    lines = [
        "Time as multiples of a copy of the input into an output of its size (y.copy_(x), timed in this run):",
        "",
        f"| neuron | L | copy ms | {header} |",
        "|---|---:|---:|" + separator,
    ]
    lines += [f"| {name} | {length} | {copy_ms[length]:.3g} | {cells} |" for name, length, _, cells in rows]
    return "\n".join(lines)


def matmul_table(summary: dict) -> str:
    """For the neurons whose work is arithmetic: each implementation's time as a multiple of a matrix
    product doing the same multiply-adds at the rate measured in this run."""
    matmul = summary["matmul"]
    header, separator, rows = _ratio_columns(summary["multiples_of_matmul"])
    lines = [
        f"Time as multiples of a matrix product doing the neuron's multiply-adds (forward; forward + backward: "
        f"three times them) at the rate of torch.mm on {matmul['size']} x {matmul['size']} matrices in this run, "
        f"{matmul['multiply_adds_per_s'] / 1e9:.3g} G multiply-adds/s; neurons whose multiply-adds take longer "
        "than the copy:",
        "",
        f"| neuron | L | multiply-adds | product ms | {header} |",
        "|---|---:|---:|---:|" + separator,
    ]
    lines += [
        f"| {name} | {length} | {first['multiply_adds']:.3g} | {first['product_ms']:.3g} | {cells} |"
        for name, length, first, cells in rows
    ]
    return "\n".join(lines)


def streaming_table(index: dict[tuple, dict], streams: list[dict], env: dict) -> str:
    """The step form reading a stream chunk by chunk, beside the parallel forward over the whole input
    (its fastest implementation), in channel-steps per second (B x D x L over the time)."""
    lines = [
        "Streaming (the step form over chunks of a stream, no autograd) beside the parallel forward: "
        "channel-steps per second, and the time per chunk:",
        "",
        "| neuron | L | chunk | channel-steps/s | ms per chunk | parallel fwd channel-steps/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in streams:
        if r["status"] != "ok":
            lines.append(f"| {r['neuron']} | {r['length']} | {r['chunk']} | {r['status']} | - | - |")
            continue
        parallel = [
            index[key]["median_s"]
            for key in ((r["neuron"], i, "forward", r["length"]) for i in ("parallel", "compiled", "triton"))
            if key in index and index[key]["status"] == "ok"
        ]
        rate = env["batch"] * env["d_model"] * r["length"] / min(parallel) if parallel else None
        lines.append(
            f"| {r['neuron']} | {r['length']} | {r['chunk']} | {r['channel_steps_per_s']:.3g} | "
            f"{1e3 * r['seconds_per_chunk']:.3g} | {'-' if rate is None else f'{rate:.3g}'} |"
        )
    return "\n".join(lines)


def triton_table(index: dict[tuple, dict], summary: dict) -> str:
    """The Triton column: timings and speedups over the sequential loop and the PyTorch parallel form."""
    lines = [
        "Triton kernels: median ms (interquartile range ms) and speedups (time of the other / Triton).",
        "",
        "| neuron | L | triton fwd | triton fwd+bwd | seq/triton fwd+bwd | par/triton fwd | par/triton fwd+bwd |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in summary["speedup_over_triton"]:
        name, length = entry["neuron"], entry["length"]
        lines.append(
            f"| {name} | {length} | {_cell(index, (name, 'triton', 'forward', length))} | "
            f"{_cell(index, (name, 'triton', 'forward_backward', length))} | "
            f"{_fmt_ratio(entry['sequential_forward_backward'])} | {_fmt_ratio(entry['parallel_forward'])} | "
            f"{_fmt_ratio(entry['parallel_forward_backward'])} |"
        )
    if summary["psn_over_dsn_triton"]:
        lines += [
            "",
            f"PSN (PyTorch) / DSN (Triton) at equal L (published: {PAPER_PSN_OVER_DSN}):",
            "",
            "| L | fwd | fwd+bwd |",
            "|---:|---:|---:|",
        ]
        lines += [
            f"| {e['length']} | {_fmt_ratio(e['forward'])} | {_fmt_ratio(e['forward_backward'])} |"
            for e in summary["psn_over_dsn_triton"]
        ]
    return "\n".join(lines)


def time_streaming(
    name: str, length: int, config: BenchConfig, device: torch.device, shorter: dict[int, dict]
) -> list[dict]:
    """The step form of neuron ``name`` reading a stream of ``length`` steps in chunks of each of
    ``config.stream_chunks`` steps (``Neuron.steps``; a chunk of 1 is one ``step`` call per step), no
    autograd: median time, channel-steps per second (B x D x L over the time) and the time per chunk
    (the latency of a chunk of 1 is that of one step). Fixed-length neurons have no step form. A chunk
    size is skipped where the sequential loop would be (``seq_skip_reason``; ``shorter``: this neuron's
    records at the previous length, by chunk size), since a chunk of one step costs what that loop costs."""
    base = {"neuron": name, "length": length}
    try:
        cls = neuron_class(name)
        if cls.fixed_length:
            return []
        torch.manual_seed(config.seed)
        neuron = build_bench_neuron(cls, length, config).to(device=device, dtype=DTYPES[config.dtype]).eval()
    except Exception as err:  # reported with the parallel forms' records; the run goes on
        return [
            {**base, "chunk": c, "status": "error", "reason": f"{type(err).__name__}: {err}"}
            for c in config.stream_chunks
        ]
    x = torch.randn(config.batch, length, config.d_model, device=device, dtype=DTYPES[config.dtype])
    records = []
    for chunk in config.stream_chunks:
        skip = seq_skip_reason(length, config, shorter.get(chunk))
        if skip is not None:
            records.append({**base, "chunk": chunk, "status": "skipped", "reason": skip})
            continue

        def stream(size: int = chunk) -> None:
            with torch.no_grad():
                state = neuron.init_state(config.batch, device, x.dtype)
                for start in range(0, length, size):
                    _, state = neuron.steps(x[:, start : start + size], state)

        times, _ = measure(stream, config, device, None)
        median = float(np.median(times))
        records.append(
            {
                **base,
                "chunk": chunk,
                "status": "ok",
                **spread(times),
                "channel_steps_per_s": config.batch * config.d_model * length / median,
                "seconds_per_chunk": median / math.ceil(length / chunk),
            }
        )
    return records


def run_benchmark(config: BenchConfig, device: torch.device, env: dict) -> tuple[list[dict], dict]:
    """Every record of the run, neuron by neuron and length by length (progress on stderr), and the
    machine's limits, measured first: the copy's time at each length (``time_copy``) and the matrix
    product's rate (``time_matmul``)."""
    copies = [time_copy(length, config, device) for length in config.lengths]
    limits = {"copy": copies, "matmul": time_matmul(config, device)}
    records = []
    limit = memory_limit_bytes(config)
    for name in config.neurons:
        shorter: dict[tuple, dict] = {}
        for length in config.lengths:
            new = bench_neuron_length(name, length, config, device, env, shorter, limit)
            shorter = {(r["implementation"], r["pass"]): r for r in new}
            records += new
            print(f"done: {name} L={length}", file=sys.stderr, flush=True)
    return records, limits


def write_results(records: list[dict], summary: dict, config: BenchConfig, env: dict, argv: list[str]) -> Path:
    """JSON file ``bench_<device>_<timestamp>.json`` under ``config.out``: meta, records, summary."""
    config.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = config.out / f"bench_{env['device']}_{stamp}.json"
    meta = {
        "command": ["python", "-m", "lra_snn.cli.bench", *argv],
        "created": stamp,
        "repeats": config.repeats,
        "warmup": config.warmup,
        "seed": config.seed,
        "max_seq_length": config.max_seq_length,
        "seq_lengths": config.seq_lengths,
        "seq_budget_s": config.seq_budget_s,
        "psn_k": config.psn_k,
        "psn_max_t": config.psn_max_t,
        "triton": config.triton,
        "memory_limit_gib": memory_limit_bytes(config) / 2**30,
        "allocator": allocator_settings(),
        **env,
    }
    path.write_text(json.dumps({"meta": meta, "records": records, "summary": summary}, indent=1))
    return path


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 256,1024, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive lengths, got {text!r}")
    return values


def _name_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in NEURONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown neuron(s) {unknown or text!r}; registered: {', '.join(NEURONS)}")
    return names


def parse_args(argv: list[str]) -> BenchConfig:
    defaults = BenchConfig(neurons=list(NEURONS), lengths=[256, 1024, 4096])
    p = argparse.ArgumentParser(prog="python -m lra_snn.cli.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--neurons", type=_name_list, default=defaults.neurons, help="comma-separated registry names")
    p.add_argument("--lengths", type=_int_list, default=defaults.lengths, help="comma-separated sequence lengths")
    p.add_argument("--batch", type=int, default=defaults.batch)
    p.add_argument("--d-model", type=int, default=defaults.d_model)
    p.add_argument("--repeats", type=int, default=defaults.repeats, help="timed calls per measurement")
    p.add_argument("--warmup", type=int, default=defaults.warmup, help="untimed calls before timing")
    p.add_argument("--device", default=defaults.device, help="cpu or cuda[:i]")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=defaults.dtype)
    p.add_argument(
        "--max-seq-length",
        type=int,
        default=defaults.max_seq_length,
        help="longest L at which the sequential loop is timed",
    )
    p.add_argument(
        "--seq-lengths",
        type=_int_list,
        default=None,
        help="time the sequential loop only at these lengths (default: every length)",
    )
    p.add_argument(
        "--seq-budget-s",
        type=float,
        default=defaults.seq_budget_s,
        help="skip a sequential measurement (warm-up + repeats) predicted to take longer than this",
    )
    p.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads (0: leave torch's default)")
    p.add_argument(
        "--psn-k",
        type=int,
        default=defaults.psn_k,
        help="order k of the neurons that take one (masked and sliding PSN)",
    )
    p.add_argument(
        "--psn-max-t",
        type=int,
        default=defaults.psn_max_t,
        help="cap max_T on T of the neurons that take one (PSN, masked PSN)",
    )
    p.add_argument(
        "--stream-chunks",
        type=_int_list,
        default=defaults.stream_chunks,
        help="steps per call when the step form reads a stream (1: one step at a time)",
    )
    p.add_argument(
        "--matmul-size",
        type=int,
        default=defaults.matmul_size,
        help="n of the n x n x n matrix product timed for the machine's multiply-add rate",
    )
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--out", type=Path, default=defaults.out, help="folder for the JSON results")
    p.add_argument(
        "--triton",
        action="store_true",
        help="also time the Triton kernels (CUDA tensors, or CPU under TRITON_INTERPRET=1)",
    )
    p.add_argument(
        "--memory-limit-gb",
        type=float,
        default=None,
        help="skip a measurement whose estimated peak memory exceeds this "
        f"(default: {AVAILABLE_FRACTION * 100:.0f}%% of MemAvailable at start)",
    )
    args = p.parse_args(argv)
    if min(args.repeats, args.warmup, args.batch, args.d_model, args.matmul_size) < 1 or args.threads < 0:
        p.error("--repeats, --warmup, --batch, --d-model and --matmul-size must be positive, --threads >= 0")
    if args.memory_limit_gb is not None and args.memory_limit_gb <= 0:
        p.error("--memory-limit-gb must be positive")
    args.lengths = sorted(set(args.lengths))  # ascending: a slow loop's time at one L bounds it at the next
    return BenchConfig(**vars(args))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config = parse_args(argv)
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for, but torch sees no CUDA device")
    default_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads or default_threads)
    try:
        env = environment(device, config)
        records, limits = run_benchmark(config, device, env)
        streams = []
        for name in config.neurons:
            shorter: dict[int, dict] = {}
            for length in config.lengths:
                new = time_streaming(name, length, config, device, shorter)
                shorter = {r["chunk"]: r for r in new}
                streams += new
    finally:
        torch.set_num_threads(default_threads)
    summary = {**summarize(records, config, limits), "streaming": streams}
    path = write_results(records, summary, config, env, argv)
    print(markdown_table(records, summary, env))
    print(f"\nresults: {path}")
    return 1 if any(r["status"] == "error" for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
