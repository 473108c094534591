"""Our neurons, S4D and training loop side by side with their peers, on one device (``make bench-peers``).

- Neurons against SpikingJelly 2.0.0 (``spikingjelly.activation_based.neuron``): ``lif`` against
  ``LIFNode`` with matched dynamics (tau 2, ``decay_input=False``, V_th 1, soft reset, reset detached,
  ATan), and the PSN family (Fang et al., arXiv 2304.12760) against ``PSN``, ``MaskedPSN`` (lambda = 1,
  k = 4) and ``SlidingPSN`` (k = 4, the config's order, and k = 32), with our weights copied into theirs.
  Each side gets its own layout, made before timing: ours (B, L, D), theirs (L, B, D).
- S4D (Gu et al. 2022, arXiv 2206.11893): our layer, and our block (S4D -> GELU -> Linear -> GLU),
  against the same with the minimal paper S4D of ``s4d_peer.py`` in place of our layer.
- One training step of the mini model (the ``lif_ssm`` zoo model at the mini profile's sizes) on one
  batch: Lightning's ``Trainer.fit`` against a plain PyTorch loop (AdamW, the same schedule), the time
  of each step read inside the loop.

Before timing, every pair is checked equal: spikes identical in float64 on two rows of the batch
(and the fraction of float32 spikes that differ reported: a flip needs a potential within rounding
of the threshold), S4D outputs within 1e-10 in float64. Then forward (no autograd) and forward +
backward, interleaved repeats with alternating order (``timing.py``), medians with quartiles, and the
ratio ours / theirs (below 1: ours is faster). A case whose estimated peak memory (neurons:
``lra_snn.cli.bench.estimate_peak_bytes`` of either side; S4D: twice the peer's (H, N/2, L) complex
tensors as ``s4d_peer.py`` counts them, plus eight inputs' worth) exceeds ``--memory-limit-gb``
(default: 80 % of the available memory) is skipped; a case whose warm-up shows that its repeats
would overrun ``--case-budget-s`` gets fewer (at least one); both are said in the table. Writes
``peers_<stamp>.json`` and ``peers_<stamp>.md`` under ``--out`` and prints the table.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peers.py [--shapes 16x128,32x256] [--lengths 256,1024,4096]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

if __package__ in (None, ""):  # run as a script: make the sibling modules importable
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from s4d_peer import check_equal, peer_bytes, peer_of
from timing import environment, interleaved, ms, spread, time_once

from lra_snn.cli.bench import AVAILABLE_FRACTION, available_bytes, estimate_peak_bytes
from lra_snn.models.blocks import S4DBlock
from lra_snn.models.s4d import S4D
from lra_snn.neurons import build_neuron

PASSES = ("forward", "forward_backward")
NEURONS = ("lif", "psn", "masked_psn", "sliding_psn", "sliding_psn_k32")
RATIO_TARGET = 1.05

Build = Callable[[int], tuple[Callable[[Tensor], Tensor], list[Tensor]]]


def spikingjelly():
    """SpikingJelly's neuron and functional modules, or None where it is not installed."""
    try:
        from spikingjelly.activation_based import functional, neuron, surrogate
    except ImportError:
        return None
    return neuron, functional, surrogate


def neuron_pair(name: str, channels: int, length: int, dtype: torch.dtype) -> tuple[nn.Module, nn.Module]:
    """Ours and SpikingJelly's neuron ``name`` at length ``length``, theirs holding our parameters."""
    sj_neuron, _, surrogate = spikingjelly()
    if name == "lif":
        ours = build_neuron("lif", channels, tau=2.0, v_th=1.0, detach_reset=True)  # default backend: compiled on CPU
        theirs = sj_neuron.LIFNode(
            tau=2.0,
            decay_input=False,
            v_threshold=1.0,
            v_reset=None,
            surrogate_function=surrogate.ATan(),
            detach_reset=True,
            step_mode="m",
        )
    elif name == "psn":
        ours = build_neuron("psn", channels, T=length, max_T=length)
        theirs = sj_neuron.PSN(T=length)
    elif name == "masked_psn":
        ours = build_neuron("masked_psn", channels, T=length, k=4, max_T=length)
        ours.lambda_ = 1.0
        theirs = sj_neuron.MaskedPSN(k=4, T=length, lambda_init=1.0, step_mode="m")
    else:
        k = 32 if name == "sliding_psn_k32" else 4
        ours = build_neuron("sliding_psn", channels, k=k)
        theirs = sj_neuron.SlidingPSN(k=k, step_mode="m")
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    if name != "lif":
        with torch.no_grad():
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias.view_as(theirs.bias))
    return ours, theirs


def run_theirs(theirs: nn.Module, x_time_major: Tensor) -> Tensor:
    """SpikingJelly's multi-step forward on (L, B, D) from a fresh state."""
    _, functional, _ = spikingjelly()
    functional.reset_net(theirs)
    return theirs(x_time_major)


def check_neuron(name: str, x: Tensor) -> dict:
    """Spikes of ours and theirs: identical in float64 on two rows (asserted); the fraction that
    differs in float32 on the whole batch (reported)."""
    rows = x[:2].double()
    ours, theirs = neuron_pair(name, x.shape[2], x.shape[1], torch.float64)
    with torch.no_grad():
        mine, other = ours(rows), run_theirs(theirs, rows.transpose(0, 1).contiguous()).transpose(0, 1)
    if not torch.equal(mine, other):
        raise AssertionError(f"{name}: {int((mine != other).sum())} spikes differ from SpikingJelly's in float64")
    ours, theirs = neuron_pair(name, x.shape[2], x.shape[1], x.dtype)
    with torch.no_grad():
        mine, other = ours(x), run_theirs(theirs, x.transpose(0, 1).contiguous()).transpose(0, 1)
    return {
        "float64_rows_equal": True,
        "float32_differing_fraction": float((mine != other).float().mean()),
        "firing_rate": float(mine.float().mean()),
    }


def passes(module: nn.Module, run: Callable[[Tensor], Tensor], x: Tensor, grad: Tensor) -> dict[str, Callable]:
    """The forward (no autograd) and forward + backward calls of one contender on its own input."""

    def forward() -> None:
        with torch.no_grad():
            run(x)

    def forward_backward() -> None:
        module.zero_grad(set_to_none=True)
        run(x.detach().requires_grad_(True)).backward(grad)

    return {"forward": forward, "forward_backward": forward_backward}


def timed_pair(calls: dict[str, Callable[[], None]], args: argparse.Namespace, device: torch.device) -> dict:
    """Interleaved timings of the two calls; fewer repeats (at least one) where a warm-up call shows
    that ``--repeats`` would overrun ``--case-budget-s``."""
    warm = sum(time_once(call, device) for call in calls.values())
    repeats = max(1, min(args.repeats, int(args.case_budget_s / max(warm, 1e-9))))
    timings = interleaved(calls, repeats, args.warmup - 1, device)
    record = {
        "repeats": repeats,
        "ours": timings["ours"],
        "theirs": timings["theirs"],
        "ratio": timings["ours"]["median_s"] / timings["theirs"]["median_s"],
    }
    if repeats < args.repeats:
        record["note"] = (
            f"{repeats} repeats (one warm-up round took {warm:.3g} s; --case-budget-s={args.case_budget_s:g})"
        )
    return record


def memory_skip(
    builds: dict[str, Build], length: int, batch: int, channels: int, pass_name: str, limit: float, device: torch.device
) -> str | None:
    """Why a case is skipped for memory (the larger of the two estimates over the limit), or None."""
    need = max(
        estimate_peak_bytes(build, length, batch, channels, torch.float32, pass_name, device)
        for build in builds.values()
    )
    if need <= limit:
        return None
    return f"estimated peak {need / 2**30:.1f} GiB > limit {limit / 2**30:.1f} GiB"


def neuron_builds(name: str, channels: int) -> dict[str, Build]:
    """``build(L)`` of ours and theirs, for the memory estimate (input in our layout for both)."""

    def build(side: str, length: int) -> tuple[Callable[[Tensor], Tensor], list[Tensor]]:
        ours, theirs = neuron_pair(name, channels, length, torch.float32)
        if side == "ours":
            return ours, list(ours.parameters())
        return (lambda x: run_theirs(theirs, x.transpose(0, 1))), list(theirs.parameters())

    return {side: partial(build, side) for side in ("ours", "theirs")}


def bench_neurons(args: argparse.Namespace, device: torch.device, limit: float) -> list[dict]:
    records = []
    for name in args.neurons:
        for batch, channels in args.shapes:
            for length in args.lengths:
                base = {"section": "neuron", "name": name, "batch": batch, "channels": channels, "length": length}
                torch.manual_seed(args.seed)
                x = 2.0 * torch.randn(batch, length, channels, device=device)
                grad = torch.randn_like(x)
                check = check_neuron(name, x)
                ours, theirs = neuron_pair(name, channels, length, torch.float32)
                x_theirs, grad_theirs = x.transpose(0, 1).contiguous(), grad.transpose(0, 1).contiguous()
                mine = passes(ours, ours, x, grad)
                other = passes(theirs, partial(run_theirs, theirs), x_theirs, grad_theirs)
                for pass_name in PASSES:
                    record = base | {"pass": pass_name, "check": check}
                    skip = memory_skip(neuron_builds(name, channels), length, batch, channels, pass_name, limit, device)
                    if skip is not None:
                        records.append(record | {"status": "skipped", "reason": skip})
                    else:
                        calls = {"ours": mine[pass_name], "theirs": other[pass_name]}
                        records.append(record | {"status": "ok"} | timed_pair(calls, args, device))
                    print(row(records[-1]), file=sys.stderr, flush=True)
    return records


def peer_block(block: S4DBlock) -> nn.Module:
    """Our block with the minimal paper S4D (holding our layer's parameters) in place of our layer."""
    peer = copy.deepcopy(block)
    peer.ssm = peer_of(block.ssm)
    return peer


def bench_s4d(args: argparse.Namespace, device: torch.device, limit: float) -> list[dict]:
    records = []
    for kind in ("layer", "block"):
        for batch, channels in args.shapes:
            for length in args.lengths:
                base = {
                    "section": "s4d",
                    "name": f"s4d_{kind}",
                    "batch": batch,
                    "channels": channels,
                    "length": length,
                    "d_state": args.d_state,
                }
                need = 2 * peer_bytes(channels, args.d_state, length) + 8 * batch * length * channels * 4
                if need > limit:
                    for pass_name in PASSES:
                        records.append(
                            base
                            | {
                                "pass": pass_name,
                                "status": "skipped",
                                "reason": f"estimated peak {need / 2**30:.1f} GiB > limit {limit / 2**30:.1f} GiB",
                            }
                        )
                        print(row(records[-1]), file=sys.stderr, flush=True)
                    continue
                torch.manual_seed(args.seed)
                layer = S4D(channels, args.d_state).to(device)
                x = torch.randn(batch, length, channels, device=device)
                grad = torch.randn_like(x)
                check = {"relative_error": check_equal(layer, x)}
                if kind == "layer":
                    ours, theirs = layer, peer_of(layer)
                else:
                    ours = S4DBlock(channels, d_state=args.d_state).to(device)
                    ours.ssm = layer
                    theirs = peer_block(ours)
                mine, other = passes(ours, ours, x, grad), passes(theirs, theirs, x, grad)
                for pass_name in PASSES:
                    calls = {"ours": mine[pass_name], "theirs": other[pass_name]}
                    records.append(
                        base | {"pass": pass_name, "check": check, "status": "ok"} | timed_pair(calls, args, device)
                    )
                    print(row(records[-1]), file=sys.stderr, flush=True)
    return records


def mini_task(seed: int, vocab: int, classes: int, steps: int) -> nn.Module:
    """The ``lif_ssm`` zoo model at the mini profile's sizes (d_model 64, 4 layers, S4D with N = 4,
    bidirectional, the LIF in place of GELU, batch norm) in its classification task."""
    from lra_snn.models.backbone import SequenceEncoder
    from lra_snn.tasks.classification import ClassificationTask

    torch.manual_seed(seed)
    layer = partial(S4DBlock, d_state=4, bidirectional=True, neuron=partial(build_neuron, "lif"))
    encoder = SequenceEncoder(d_model=64, n_layers=4, layer=layer, vocab_size=vocab)
    return ClassificationTask(encoder, classes, total_steps=steps, warmup_steps=0)


class StepTimes:
    """A Lightning callback recording the time of every training step (batch start to batch end)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.start = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.times.append(time.perf_counter() - self.start)


def training_steps(length: int, args: argparse.Namespace) -> dict[str, list[float]]:
    """Per-step times of Lightning's loop and of a plain loop, each on its own copy of one model, on
    one batch (B = 32, L = ``length``), in alternating rounds; the first step of each round (optimizer
    state built) is left out."""
    import lightning as L

    generator = torch.Generator().manual_seed(args.seed)
    batch = {
        "inputs": torch.randint(1, 20, (32, length), generator=generator),
        "lengths": torch.full((32,), length),
        "labels": torch.randint(0, 10, (32,), generator=generator),
    }
    steps = args.train_steps
    lightning_task = mini_task(args.seed, 20, 10, 4 * steps * args.train_rounds)
    plain_task = copy.deepcopy(lightning_task)
    optimizers = plain_task.configure_optimizers()
    optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    times: dict[str, list[float]] = {"lightning": [], "plain": []}
    callback_class = type("StepTimesCallback", (StepTimes, L.Callback), {})

    def lightning_round() -> None:
        callback = callback_class()
        trainer = L.Trainer(
            max_steps=steps,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            callbacks=[callback],
        )
        loader = torch.utils.data.DataLoader([batch] * steps, batch_size=None)
        trainer.fit(lightning_task, train_dataloaders=loader)
        times["lightning"] += callback.times[1:]

    def plain_round() -> None:
        plain_task.train()
        for step in range(steps):
            start = time.perf_counter()
            logits = plain_task(batch["inputs"], batch["lengths"])
            loss = nn.functional.cross_entropy(logits.float(), batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if step:
                times["plain"].append(time.perf_counter() - start)

    for round_index in range(args.train_rounds):
        for run in (lightning_round, plain_round) if round_index % 2 == 0 else (plain_round, lightning_round):
            run()
    return times


def bench_training(args: argparse.Namespace) -> list[dict]:
    """One mini training step: Lightning (ours) against a plain PyTorch loop (theirs)."""
    records = []
    for length in args.train_lengths:
        times = training_steps(length, args)
        record = {
            "section": "training",
            "name": "mini_step_lif_ssm",
            "batch": 32,
            "channels": 64,
            "length": length,
            "pass": "training_step",
            "status": "ok",
            "repeats": len(times["plain"]),
            "ours": {"times_s": times["lightning"]} | spread(times["lightning"]),
            "theirs": {"times_s": times["plain"]} | spread(times["plain"]),
        }
        record["ratio"] = record["ours"]["median_s"] / record["theirs"]["median_s"]
        records.append(record)
        print(row(record), file=sys.stderr, flush=True)
    return records


def row(r: dict) -> str:
    """One markdown row of a record."""
    head = f"| {r['name']} | {r['batch']}x{r['channels']} | {r['length']} | {r['pass']} |"
    if r["status"] != "ok":
        return f"{head} skipped | | | {r['reason']} |"
    flag = "" if r["section"] == "training" or r["ratio"] <= RATIO_TARGET else " **(behind)**"
    notes = [r.get("note", "")]
    check = r.get("check", {})
    if "float32_differing_fraction" in check:
        notes.append(f"float32 spikes differing: {check['float32_differing_fraction']:.1e}")
    if "relative_error" in check:
        notes.append(f"rel. error float32: {check['relative_error']['float32']:.1e}")
    return f"{head} {ms(r['ours'])} | {ms(r['theirs'])} | {r['ratio']:.3f}{flag} | {'; '.join(n for n in notes if n)} |"


def table(records: list[dict], env: dict) -> str:
    lines = [
        f"Ours against peers on {env['device_name']} (torch threads: {env['threads']}), float32, "
        f"interleaved repeats; ms as median [q1, q3]; ratio = ours / theirs (theirs: SpikingJelly "
        f"{env.get('spikingjelly', '-')} for neurons, the minimal paper S4D for s4d_*, a plain PyTorch loop "
        f"for the training step, where ours is Lightning's). Target for neurons: ratio <= {RATIO_TARGET}.",
        "",
        "| case | B x D | L | pass | ours | theirs | ours/theirs | notes |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    lines += [row(r) for r in records]
    behind = [r for r in records if r["status"] == "ok" and r["section"] != "training" and r["ratio"] > RATIO_TARGET]
    lines += [
        "",
        f"Behind the target: {len(behind)} of {sum(r['status'] == 'ok' for r in records)} timed cases"
        + (
            ": "
            + ", ".join(
                f"{r['name']} {r['batch']}x{r['channels']} L={r['length']} {r['pass']} ({r['ratio']:.2f})"
                for r in behind
            )
            if behind
            else "."
        ),
    ]
    return "\n".join(lines)


def _shapes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in item.split("x")) for item in text.split(",")]  # type: ignore[misc]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default="neurons,s4d,training", help="comma-separated: neurons, s4d, training")
    parser.add_argument("--neurons", default=",".join(NEURONS), type=lambda s: s.split(","))
    parser.add_argument("--shapes", default="16x128,32x256", type=_shapes, help="B x D pairs")
    parser.add_argument("--lengths", default="256,1024,4096", type=_ints)
    parser.add_argument("--d-state", type=int, default=64, help="S4D state size N")
    parser.add_argument(
        "--train-lengths",
        default="100,1024",
        type=_ints,
        help="sequence lengths of the training-step batch (B = 32; the mini ListOps has L <= 100)",
    )
    parser.add_argument("--train-steps", type=int, default=6, help="steps per round of each training loop")
    parser.add_argument("--train-rounds", type=int, default=4, help="alternating rounds of the two loops")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before timing (at least 1)")
    parser.add_argument(
        "--case-budget-s",
        type=float,
        default=120.0,
        help="time for one case's repeats (both contenders); fewer repeats above it",
    )
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=None,
        help=f"skip cases estimated above this (default: {AVAILABLE_FRACTION * 100:.0f}%% of MemAvailable)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
    args.sections = args.sections.split(",")
    unknown = set(args.sections) - {"neurons", "s4d", "training"} | set(args.neurons) - set(NEURONS)
    if unknown or args.warmup < 1 or args.repeats < 1:
        parser.error(f"unknown sections or neurons {sorted(unknown)}, or --warmup / --repeats below 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    available = available_bytes()
    limit = (
        args.memory_limit_gb * 2**30
        if args.memory_limit_gb is not None
        else AVAILABLE_FRACTION * available
        if available is not None
        else float("inf")
    )
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    env = {
        "created": stamp,
        "command": ["python", "benchmarks/peers.py", *argv],
        **environment(device),
        "memory_limit_gib": limit / 2**30,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "seed": args.seed,
    }
    records: list[dict] = []
    if "neurons" in args.sections:
        if spikingjelly() is None:
            print("spikingjelly is not installed: the neuron section is skipped", flush=True)
        else:
            import spikingjelly as sj

            env["spikingjelly"] = getattr(sj, "__version__", "2.0.0")
            records += bench_neurons(args, device, limit)
    if "s4d" in args.sections:
        records += bench_s4d(args, device, limit)
    if "training" in args.sections:
        records += bench_training(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"peers_{stamp}.json"
    path.write_text(json.dumps({"meta": env, "records": records}, indent=1) + "\n")
    text = table(records, env)
    path.with_suffix(".md").write_text(text + "\n")
    print(text)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
