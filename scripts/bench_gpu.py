"""GPU job for the neuron kernels (docs/kernels.md, "Speed: floors and targets" and "Benchmark protocol").

    python scripts/bench_gpu.py --out $OUT          (``make bench-gpu``)

1. Correctness at full size: every op with Triton kernels (``lra_snn.ops``) in float32 against its
   PyTorch path in float64, forward and gradients (spike trains: fraction of flipped spikes).
2. Device-to-device copy bandwidth (``dst.copy_(src)``, read + write bytes over the median time).
3. Primitive timings, PyTorch path vs Triton, forward and forward+backward, at each L: median
   and spread, the Triton path's bytes moved per call as GB/s and as a fraction of the copy bandwidth;
   inputs rotate over enough copies to exceed twice the L2 cache.
3a. Before 3: a tile sweep (``lra_snn.ops.tiles``): candidate (chunk, channels, warps) tiles for
   the chunked-scan kernels and for the sequential LIF threshold scan, timed at one length; the
   fastest of each kind is used for the rest of the run and recorded.
4. Neuron timings through ``lra_snn.cli.bench`` with the Triton column (sequential / PyTorch parallel
   / Triton), with the speedups next to the papers' (LIF parallel vs sequential, PRF paper
   6.57x at L = 1k to 16.5x at 32k; PSN / DSN 25.6x at 16k).

Writes ``bench_gpu_<device>_<stamp>.json`` and ``.md`` (the tables) under ``--out``. Without
CUDA it runs on the CPU under the Triton interpreter (``--tiny`` sizes), which is how it is tested.
"""

from __future__ import annotations

import os
import sys

import torch

if not torch.cuda.is_available():  # before triton is imported anywhere
    os.environ.setdefault("TRITON_INTERPRET", "1")

import argparse
import dataclasses
import datetime as dt
import functools
import json
import math
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import triton
from torch import Tensor

from lra_snn.cli import bench
from lra_snn.ops.complex_scan import complex_scan
from lra_snn.ops.dsn import dsn
from lra_snn.ops.hard_reset_scan import hard_reset_scan
from lra_snn.ops.lif import lif
from lra_snn.ops.linear_scan import linear_scan
from lra_snn.ops.refractory_iteration import refractory_iteration
from lra_snn.ops.threshold_scan import threshold_scan
from lra_snn.ops.tiles import GPU_TILES, Tile, override_tiles, tile

PUBLISHED = {
    "lif_parallel_over_sequential_training": "6.57x at L = 1,024 to 16.5x at L = 32,768 (PRF paper)",
    "psn_over_dsn_training": bench.PAPER_PSN_OVER_DSN,
}
DEFAULT_L2_BYTES = 50 * 2**20


@dataclass
class Primitive:
    """An op's benchmark: inputs (leaves needing gradients first), the call for a backend, and
    the number of (B, L, D) float32-sized arrays its Triton path reads + writes (forward, backward)."""

    name: str
    make_inputs: Callable[[int, int, int, torch.device, torch.Generator], list[Tensor]]
    run: Callable[[list[Tensor], str], Tensor]
    arrays_forward: int
    arrays_backward: int | None  # None: forward only (no autograd)
    spiking: bool


def _decays(shape, device, g) -> Tensor:
    return (0.05 + 0.9 * torch.rand(shape, generator=g, dtype=torch.float64)).to(device)


def _normal(shape, device, g, scale: float = 1.0, shift: float = 0.0) -> Tensor:
    return (shift + scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(device)


def _lif(inputs: list[Tensor], backend: str) -> Tensor:
    return lif(inputs[0], 0.5, 1.0, backend=backend)[0]


def _dsn(inputs: list[Tensor], backend: str) -> Tensor:
    return dsn(*inputs, 0.25, 4, False, backend=backend)


def _refractory(inputs: list[Tensor], backend: str) -> Tensor:
    return refractory_iteration(*inputs, 0.5, 0.3, backend=backend)[0]


def _hard_reset(inputs: list[Tensor], backend: str) -> Tensor:
    return hard_reset_scan(inputs[0], 1.0, 0.125, backend=backend)[0]


def _threshold(inputs: list[Tensor], backend: str) -> Tensor:
    excess, decay = inputs
    return threshold_scan(excess, 1.0, decay, backend=backend)[0]


def _complex_inputs(b, length, d, device, g) -> list[Tensor]:
    a = torch.polar(
        0.05 + 0.9 * torch.rand(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    )
    return [a.to(device), torch.randn(b, length, d, generator=g, dtype=torch.complex128).to(device)]


PRIMITIVES = [
    Primitive(
        "scan_per_step",
        lambda b, n, d, dev, g: [_decays((b, n, d), dev, g), _normal((b, n, d), dev, g)],
        lambda t, backend: linear_scan(*t, backend=backend),
        3,
        5,
        False,
    ),
    Primitive(
        "scan_per_channel",
        lambda b, n, d, dev, g: [_decays((d,), dev, g), _normal((b, n, d), dev, g)],
        lambda t, backend: linear_scan(*t, backend=backend),
        2,
        3,
        False,
    ),
    Primitive("complex_scan", _complex_inputs, lambda t, backend: complex_scan(*t, backend=backend), 4, 6, False),
    Primitive("lif_fused", lambda b, n, d, dev, g: [_normal((b, n, d), dev, g, 0.8, 0.4)], _lif, 3, 3, True),
    Primitive(
        "dsn_fused",
        lambda b, n, d, dev, g: [_normal((b, n, d), dev, g, 2.0), _normal((b, n, d), dev, g, 3.0)],
        _dsn,
        4,
        6,
        True,
    ),
    Primitive(
        "refractory_iteration",
        lambda b, n, d, dev, g: [
            _normal((b, n, d), dev, g, 0.8),
            (torch.rand(b, n, d, generator=g) < 0.3).double().to(dev),
            _decays((d,), dev, g) + 0.5,
            _decays((d,), dev, g),
        ],
        _refractory,
        5,
        None,
        True,
    ),
    Primitive(
        "threshold_scan",
        lambda b, n, d, dev, g: [_normal((b, n, d), dev, g, 1.0, 0.3), _decays((d,), dev, g)],
        _threshold,
        7,
        None,
        True,
    ),  # the kernel reads e, writes b (2); the spikes H(e - b) about 5 more
    Primitive(
        "hard_reset_scan",
        lambda b, n, d, dev, g: [_normal((b, n, d), dev, g, 0.8, 0.4)],
        _hard_reset,
        6,
        6,
        True,
    ),  # leaky integration (2), offsets (2), spikes and potentials (2); backward: one reverse scan and its inputs
]


def _cast(t: Tensor, real: torch.dtype) -> Tensor:
    """``t`` in the real dtype ``real`` (its complex counterpart for complex tensors)."""
    if t.is_complex():
        return t.to(torch.complex64 if real == torch.float32 else torch.complex128)
    return t.to(real)


def outputs_and_grads(primitive: Primitive, inputs: list[Tensor], backend: str, dy_seed: int) -> list[Tensor]:
    """The output and, for differentiable primitives, the gradients of the floating-point leaves."""
    if primitive.arrays_backward is None:
        with torch.no_grad():
            return [primitive.run(inputs, backend)]
    leaves = [t.clone().requires_grad_() for t in inputs]
    out = primitive.run(leaves, backend)
    g = torch.Generator().manual_seed(dy_seed)
    dy = torch.randn(out.shape, generator=g, dtype=torch.float64).to(device=out.device, dtype=out.dtype)
    return [out.detach(), *torch.autograd.grad(out, leaves, dy)]


def relative_error(got: Tensor, expected: Tensor) -> float:
    """``max |got - expected| / max(1, max |expected|)`` (NaN counts as infinite error)."""
    diff = (got.to(expected.dtype) - expected).abs()
    if torch.isnan(diff).any():
        return math.inf
    return float(diff.max() / max(1.0, float(expected.abs().max())))


def check_primitive(
    primitive: Primitive, batch: int, length: int, channels: int, device: torch.device, tolerance: float
) -> dict:
    """Triton in float32 against the PyTorch path in float64 at one (full) size."""
    inputs = primitive.make_inputs(batch, length, channels, device, torch.Generator().manual_seed(0))
    inputs32 = [_cast(t, torch.float32) for t in inputs]
    got = outputs_and_grads(primitive, inputs32, "triton", dy_seed=1)
    expected = outputs_and_grads(primitive, inputs, "torch", dy_seed=1)
    names = ["output"] + [f"grad_{i}" for i in range(len(got) - 1)]
    errors = {n: relative_error(a, b) for n, a, b in zip(names, got, expected)}
    record = {
        "primitive": primitive.name,
        "batch": batch,
        "length": length,
        "channels": channels,
        "relative_errors": errors,
        "tolerance": tolerance,
    }
    if primitive.spiking:
        # float32 vs float64 may flip spikes whose margin is within rounding of the threshold,
        # and a flip changes that neuron's later gradients: judge the flip rate and the output only.
        flipped = float((got[0].double() != expected[0].double()).float().mean())
        record.update(
            flipped_fraction=flipped,
            ok=flipped <= tolerance,
            judged="fraction of flipped spikes (gradients reported, not judged)",
        )
    else:
        record.update(ok=max(errors.values()) <= tolerance, judged="max relative error of output and gradients")
    return record


def copy_bandwidth(n_bytes: int, device: torch.device, repeats: int) -> dict:
    """Device-to-device copy: bytes read + written over the median time, in GB/s."""
    src = torch.empty(n_bytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    times = [bench.time_once(lambda: dst.copy_(src), device) for _ in range(repeats + 2)][2:]
    stats = bench.spread(times)
    return {"bytes": 4 * src.numel(), **stats, "gb_per_s": 2 * 4 * src.numel() / stats["median_s"] / 1e9}


def l2_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", DEFAULT_L2_BYTES))
    return DEFAULT_L2_BYTES


def time_rotating(
    fn: Callable[[list[Tensor]], None], sets: list[list[Tensor]], device: torch.device, warmup: int, repeats: int
) -> list[float]:
    """Times of ``repeats`` calls after ``warmup``, each on the next input set (cold caches)."""
    for i in range(warmup):
        fn(sets[i % len(sets)])
    return [bench.time_once(functools.partial(fn, sets[(warmup + i) % len(sets)]), device) for i in range(repeats)]


def time_primitive(
    primitive: Primitive,
    batch: int,
    length: int,
    channels: int,
    device: torch.device,
    warmup: int,
    repeats: int,
    copy_gb_per_s: float,
) -> list[dict]:
    """Records per backend and pass: median/spread, and for Triton the GB/s and fraction of copy."""
    set_bytes = 4 * batch * length * channels * max(primitive.arrays_forward, 1)
    copies = max(1, min(8, math.ceil(2 * l2_bytes(device) / set_bytes)))
    g = torch.Generator().manual_seed(2)
    sets = [
        [_cast(t, torch.float32) for t in primitive.make_inputs(batch, length, channels, device, g)]
        for _ in range(copies)
    ]
    passes = {"forward": primitive.arrays_forward}
    if primitive.arrays_backward is not None:
        passes["forward_backward"] = primitive.arrays_forward + primitive.arrays_backward
    records = []
    for backend in ("torch", "triton"):
        for pass_name, arrays in passes.items():
            fn = make_call(primitive, backend, pass_name)
            try:
                stats = bench.spread(time_rotating(fn, sets, device, warmup, repeats))
            except Exception as err:  # reported; the run goes on to the other measurements
                records.append(
                    {
                        "primitive": primitive.name,
                        "backend": backend,
                        "pass": pass_name,
                        "length": length,
                        "status": "error",
                        "reason": f"{type(err).__name__}: {err}",
                    }
                )
                continue
            gb_per_s = 4 * arrays * batch * length * channels / stats["median_s"] / 1e9
            records.append(
                {
                    "primitive": primitive.name,
                    "backend": backend,
                    "pass": pass_name,
                    "length": length,
                    "batch": batch,
                    "channels": channels,
                    "status": "ok",
                    **stats,
                    "kernel_bytes": 4 * arrays * batch * length * channels,
                    "gb_per_s": gb_per_s,
                    "fraction_of_copy": gb_per_s / copy_gb_per_s,
                    "input_copies": copies,
                }
            )
    return records


def make_call(primitive: Primitive, backend: str, pass_name: str) -> Callable[[list[Tensor]], None]:
    """One forward (no autograd) or forward + backward of the primitive on an input set."""

    def forward(inputs: list[Tensor]) -> None:
        with torch.no_grad():
            primitive.run(inputs, backend)

    def forward_backward(inputs: list[Tensor]) -> None:
        out = primitive.run([t.detach().requires_grad_() for t in inputs], backend)
        out.backward(torch.ones_like(out))

    return forward if pass_name == "forward" else forward_backward


TILE_CANDIDATES = {
    "scan": [
        Tile(64, 32, 2),
        Tile(128, 32, 4),
        Tile(256, 32, 8),
        Tile(128, 16, 2),
        Tile(128, 64, 4),
        Tile(256, 64, 8),
        Tile(64, 64, 4),
        Tile(256, 16, 4),
    ],
    "sequential": [Tile(8, 32, 1), Tile(16, 32, 1), Tile(32, 32, 1), Tile(16, 16, 1), Tile(16, 64, 2), Tile(32, 64, 2)],
}
TINY_TILE_CANDIDATES = {"scan": [Tile(16, 16, 1), Tile(8, 8, 1)], "sequential": [Tile(16, 16, 1), Tile(4, 8, 1)]}
# what each kind's sweep times: (primitive, pass); the sequential kernels are the LIF forward and the threshold scan
SWEEP_WORKLOAD = {
    "scan": [("scan_per_step", "forward_backward"), ("dsn_fused", "forward_backward")],
    "sequential": [("lif_fused", "forward"), ("threshold_scan", "forward")],
}


def sweep_tiles(
    candidates: dict[str, list[Tile]],
    batch: int,
    length: int,
    channels: int,
    device: torch.device,
    warmup: int,
    repeats: int,
) -> tuple[dict[str, Tile], list[dict]]:
    """Time each candidate tile of each kind on that kind's workload; the fastest tile per kind
    (a tile that fails to compile or run is recorded with its error and skipped)."""
    by_name = {p.name: p for p in PRIMITIVES}
    g = torch.Generator().manual_seed(3)
    best: dict[str, Tile] = {}
    records = []
    for kind, tiles in candidates.items():
        workload = [(by_name[name], pass_name) for name, pass_name in SWEEP_WORKLOAD[kind]]
        inputs = {
            p.name: [[_cast(t, torch.float32) for t in p.make_inputs(batch, length, channels, device, g)]]
            for p, _ in workload
        }
        timings = {}
        for candidate in tiles:
            record = {"kind": kind, "tile": asdict(candidate), "length": length, "batch": batch, "channels": channels}
            try:
                with override_tiles(**{kind: candidate}):
                    medians = {
                        f"{p.name}/{pass_name}": bench.spread(
                            time_rotating(make_call(p, "triton", pass_name), inputs[p.name], device, warmup, repeats)
                        )["median_s"]
                        for p, pass_name in workload
                    }
            except Exception as err:  # e.g. a tile too large for the registers: recorded, not chosen
                records.append({**record, "status": "error", "reason": f"{type(err).__name__}: {err}"})
                continue
            timings[candidate] = sum(medians.values())
            records.append({**record, "status": "ok", "median_s": medians, "total_s": timings[candidate]})
        best[kind] = min(timings, key=timings.get) if timings else tile(kind)
        for record in records:
            if record["kind"] == kind:
                record["chosen"] = record["tile"] == asdict(best[kind])
    return best, records


def tile_table(records: list[dict]) -> str:
    lines = ["| kind | chunk | channels | warps | workload ms | chosen |", "|---|---:|---:|---:|---:|---|"]
    for r in records:
        t = r["tile"]
        total = f"{1e3 * r['total_s']:.3g}" if r["status"] == "ok" else r["status"]
        lines.append(
            f"| {r['kind']} | {t['chunk']} | {t['block_d']} | {t['num_warps']} | {total} | "
            f"{'yes' if r.get('chosen') else ''} |"
        )
    return "\n".join(lines)


def _ms(record: dict | None) -> str:
    if record is None or record["status"] != "ok":
        return "-" if record is None else record["status"]
    return f"{1e3 * record['median_s']:.3g} ({1e3 * (record['q3_s'] - record['q1_s']):.2g})"


def primitive_table(records: list[dict]) -> str:
    """PyTorch vs Triton per primitive, L and pass, with Triton's GB/s and fraction of copy bandwidth."""
    index = {(r["primitive"], r["backend"], r["pass"], r["length"]): r for r in records}
    lines = [
        "| primitive | L | pass | torch ms | triton ms | speedup | triton GB/s | of copy |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for (name, backend, pass_name, length), triton_record in index.items():
        if backend != "triton":
            continue
        torch_record = index.get((name, "torch", pass_name, length))
        both_ok = triton_record["status"] == "ok" and torch_record is not None and torch_record["status"] == "ok"
        speedup = f"{torch_record['median_s'] / triton_record['median_s']:.2f}x" if both_ok else "-"
        rate = (
            f"{triton_record['gb_per_s']:.3g} | {100 * triton_record['fraction_of_copy']:.3g} %"
            if triton_record["status"] == "ok"
            else "- | -"
        )
        lines.append(
            f"| {name} | {length} | {pass_name} | {_ms(torch_record)} | {_ms(triton_record)} | {speedup} | {rate} |"
        )
    return "\n".join(lines)


def correctness_table(checks: list[dict]) -> str:
    lines = [
        "| primitive | B, L, D | ok | max relative error (output, grads) | flipped spikes |",
        "|---|---|---|---|---:|",
    ]
    for c in checks:
        errors = ", ".join(f"{v:.1e}" for v in c["relative_errors"].values())
        flipped = f"{c['flipped_fraction']:.1e}" if "flipped_fraction" in c else "-"
        lines.append(
            f"| {c['primitive']} | {c['batch']}, {c['length']}, {c['channels']} | "
            f"{'yes' if c['ok'] else 'NO'} | {errors} | {flipped} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python scripts/bench_gpu.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "results/bench")))
    p.add_argument("--lengths", type=bench._int_list, default=[1024, 2048, 4096, 8192, 16384, 32768])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--check-length", type=int, default=16384, help="L of the full-size correctness check")
    p.add_argument("--check-batch", type=int, default=8, help="batch of the full-size correctness check")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        help="max relative error (float32 kernel vs float64 PyTorch) and max flipped-spike fraction",
    )
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--copy-mib", type=int, default=1024, help="buffer size of the copy-bandwidth measurement")
    p.add_argument(
        "--neurons",
        type=bench._name_list,
        default=["lif", "dsn", "psn", "prf", "refractory_lif"],
        help="in this order (the papers' comparisons first: a time limit cuts the end)",
    )
    p.add_argument("--seq-budget-s", type=float, default=30.0, help="as in lra_snn.cli.bench: skip slower loops")
    p.add_argument(
        "--seq-lengths",
        type=bench._int_list,
        default=[1024, 32768],
        help="lengths at which the sequential loops are timed (the PRF paper's anchors; each costs seconds)",
    )
    p.add_argument("--sweep-length", type=int, default=16384, help="L of the tile sweep")
    p.add_argument("--no-sweep", action="store_true", help="keep the default tiles (lra_snn.ops.tiles)")
    p.add_argument("--tiny", action="store_true", help="CPU/interpreter sizes (for the test of this script)")
    args = p.parse_args(argv)
    if args.tiny:
        args.lengths, args.batch, args.d_model, args.check_length, args.check_batch = [17], 1, 4, 33, 2
        args.seq_lengths = [17]
        args.repeats, args.warmup, args.copy_mib, args.sweep_length = 1, 1, 1, 17
    return args


def time_primitives(args: argparse.Namespace, device: torch.device, copy: dict) -> list[dict]:
    """Every primitive at every length, PyTorch path and Triton."""
    records = []
    for length in args.lengths:
        for p in PRIMITIVES:
            records += time_primitive(
                p, args.batch, length, args.d_model, device, args.warmup, args.repeats, copy["gb_per_s"]
            )
        print(f"done: primitives at L={length}", file=sys.stderr, flush=True)
    return records


def neuron_config(args: argparse.Namespace, device: torch.device) -> bench.BenchConfig:
    return bench.BenchConfig(
        neurons=args.neurons,
        lengths=sorted(args.lengths),
        batch=args.batch,
        d_model=args.d_model,
        repeats=args.repeats,
        warmup=args.warmup,
        device=device.type,
        max_seq_length=max(args.lengths),
        seq_lengths=args.seq_lengths,
        seq_budget_s=args.seq_budget_s,
        psn_max_t=max(args.lengths),
        triton=True,
        out=args.out,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = bench.device_name(device)
    print(f"device: {name}; Triton interpreter: {os.environ.get('TRITON_INTERPRET', '0') == '1'}", file=sys.stderr)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench_gpu_{bench.device_slug(name)}_{stamp}.json"
    meta = {
        "command": ["python", "scripts/bench_gpu.py", *argv],
        "created": stamp,
        "device_name": name,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "interpreter": os.environ.get("TRITON_INTERPRET", "0") == "1",
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    result = {"meta": meta, "published": PUBLISHED}

    def save(**parts) -> None:  # after each phase, so a job stopped by a time limit keeps what it measured
        result.update(parts)
        path.write_text(json.dumps(result, indent=1))

    checks = [
        check_primitive(p, args.check_batch, args.check_length, args.d_model, device, args.tolerance)
        for p in PRIMITIVES
    ]
    copy = copy_bandwidth(args.copy_mib * 2**20, device, max(args.repeats, 3))
    save(correctness=checks, copy_bandwidth=copy)
    chosen, sweep = {kind: tile(kind) for kind in GPU_TILES}, []
    if not args.no_sweep:
        chosen, sweep = sweep_tiles(
            TINY_TILE_CANDIDATES if args.tiny else TILE_CANDIDATES,
            args.batch,
            args.sweep_length,
            args.d_model,
            device,
            args.warmup,
            args.repeats,
        )
        print(f"done: tile sweep, chosen {chosen}", file=sys.stderr, flush=True)
    save(tiles={"chosen": {kind: asdict(t) for kind, t in chosen.items()}, "sweep": sweep})
    config = neuron_config(args, device)
    env = bench.environment(device, config)
    with override_tiles(**chosen):
        primitive_records = time_primitives(args, device, copy)
        save(primitives=primitive_records)
        neuron_records = []
        for neuron in args.neurons:  # one at a time, each saved with the summary so far
            records, limits = bench.run_benchmark(dataclasses.replace(config, neurons=[neuron]), device, env)
            neuron_records += records
            summary = bench.summarize(neuron_records, config, limits)
            save(neurons={"records": neuron_records, "summary": summary})
    table = "\n\n".join(
        [
            f"# Kernel benchmark on {name} (torch {torch.__version__}, triton {triton.__version__})",
            f"Copy bandwidth (device to device, read + write): {copy['gb_per_s']:.0f} GB/s",
            f"Correctness at full size, float32 Triton vs float64 PyTorch (tolerance {args.tolerance:g}):",
            correctness_table(checks),
            f"Tile sweep at L={args.sweep_length} (the chosen tiles time everything below):",
            tile_table(sweep) if sweep else "(not run: --no-sweep)",
            f"Primitives, B={args.batch}, D={args.d_model}, float32: median ms (interquartile range ms):",
            primitive_table(primitive_records),
            f"Published: LIF parallel vs sequential {PUBLISHED['lif_parallel_over_sequential_training']}; "
            f"PSN / DSN {PUBLISHED['psn_over_dsn_training']}.",
            bench.markdown_table(neuron_records, summary, env),
        ]
    )
    path.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"\nresults: {path}")
    failed = [c["primitive"] for c in checks if not c["ok"]]
    errors = [r for r in primitive_records + neuron_records if r["status"] == "error"]
    if failed or errors:
        print(f"FAILED correctness: {failed}; errors: {len(errors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
