"""Side-by-side timing of our S4D layer (``lra_snn.models.s4d.S4D``) against a minimal S4D written
from the paper (Gu, Gupta, Goel and Re 2022, "On the Parameterization and Initialization of Diagonal
State Space Models", arXiv 2206.11893): the Vandermonde kernel ``K = (B_bar * C) . V_L(A_bar)`` with the whole
(H, N/2, L) Vandermonde matrix, zero-order hold, FFT convolution of size 2L and the D skip.

The peer gets our layer's parameters; outputs are checked equal (float64 to 1e-10, float32 reported)
before timing. Forward + backward (parameter and input gradients) on one device, ours and the peer
interleaved with alternating order in every repeat, after warm-up; medians with quartiles and range,
and the ratio ours/peer of the medians. A length whose peer would need more than ``--peer-limit-gb``
(an estimate: four (H, N/2, L) complex tensors) is skipped for both, with the reason recorded.
Writes ``s4d_peer_<timestamp>.json`` under ``--out`` and prints a markdown table.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/s4d_peer.py [--lengths 1024,4096,16384] [--device cuda]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

if __package__ in (None, ""):  # run as a script: make the sibling module importable
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import environment, interleaved

from lra_snn.models.s4d import S4D

PEER_TENSORS = 4  # (H, N/2, L) complex tensors alive at the peer's peak: Vandermonde, its argument, two gradients


class PeerS4D(nn.Module):
    """S4D as the paper states it, on (B, L, H) input: the kernel
    ``K[l] = 2 Re( sum_n C_n (exp(dt A_n) - 1) / A_n exp(dt A_n)^l )`` by the full Vandermonde matrix,
    ``y = K * u + D u`` by FFT convolution of size 2L."""

    def __init__(self, d_model: int, d_state: int) -> None:
        super().__init__()
        modes = d_state // 2
        self.log_dt = nn.Parameter(torch.zeros(d_model))
        self.log_neg_A_real = nn.Parameter(torch.zeros(d_model, modes))
        self.A_imag = nn.Parameter(torch.zeros(d_model, modes))
        self.C = nn.Parameter(torch.zeros(d_model, modes, 2))
        self.D = nn.Parameter(torch.zeros(d_model))

    def kernel(self, length: int) -> Tensor:
        dt = self.log_dt.exp()[:, None]
        A = torch.complex(-self.log_neg_A_real.exp(), self.A_imag)
        dtA = dt * A
        C = torch.view_as_complex(self.C) * (torch.exp(dtA) - 1) / A
        steps = torch.arange(length, device=dtA.device, dtype=dt.dtype)
        vandermonde = torch.exp(dtA[..., None] * steps)  # (H, N/2, L)
        return 2 * torch.einsum("hn,hnl->hl", C, vandermonde).real

    def forward(self, u: Tensor) -> Tensor:
        length = u.shape[1]
        k_f = torch.fft.rfft(self.kernel(length), n=2 * length)
        u_f = torch.fft.rfft(u.transpose(1, 2), n=2 * length)
        y = torch.fft.irfft(u_f * k_f, n=2 * length)[..., :length].transpose(1, 2)
        return y + u * self.D


def peer_of(layer: S4D) -> PeerS4D:
    """A peer holding a copy of a causal S4D layer's parameters."""
    systems, modes = layer.kernel.A_imag.shape
    peer = PeerS4D(systems, 2 * modes).to(layer.D.device, layer.D.dtype)
    peer.load_state_dict({name.removeprefix("kernel."): value for name, value in layer.state_dict().items()})
    return peer


def peer_bytes(d_model: int, d_state: int, length: int) -> int:
    return PEER_TENSORS * d_model * (d_state // 2) * length * 8


def relative_error(value: Tensor, reference: Tensor) -> float:
    return ((value.double() - reference.double()).norm() / reference.double().norm()).item()


def check_equal(layer: S4D, u: Tensor) -> dict:
    """Our output against the peer's, both in float64 (asserted) and in float32 (reported)."""
    errors = {}
    for dtype in (torch.float64, torch.float32):
        ours = copy.deepcopy(layer).to(dtype)
        with torch.no_grad():
            errors[str(dtype).removeprefix("torch.")] = relative_error(ours(u.to(dtype)), peer_of(ours)(u.to(dtype)))
    if errors["float64"] > 1e-10:
        raise AssertionError(f"our S4D and the peer differ: relative error {errors['float64']:.2e} in float64")
    return errors


def training_step(module: nn.Module, u: Tensor, grad: Tensor):
    def step() -> None:
        module.zero_grad(set_to_none=True)
        x = u.detach().requires_grad_(True)
        module(x).backward(grad)

    return step


def bench_length(length: int, args: argparse.Namespace, device: torch.device) -> dict:
    record = {"length": length}
    need = peer_bytes(args.d_model, args.d_state, length)
    if need > args.peer_limit_gb * 2**30:
        return record | {
            "status": "skipped",
            "reason": f"peer needs ~{need / 2**30:.1f} GiB > {args.peer_limit_gb} GiB",
        }
    torch.manual_seed(args.seed)
    layer = S4D(args.d_model, args.d_state).to(device)
    u = torch.randn(args.batch, length, args.d_model, device=device)
    grad = torch.randn_like(u)
    record["relative_error"] = check_equal(layer, u)
    steps = {"ours": training_step(layer, u, grad), "peer": training_step(peer_of(layer), u, grad)}
    record.update(interleaved(steps, args.repeats, args.warmup, device))
    record["ratio_ours_over_peer"] = record["ours"]["median_s"] / record["peer"]["median_s"]
    return record | {"status": "ok", "peer_estimate_gib": need / 2**30}


def table(records: list[dict], env: dict) -> str:
    lines = [
        f"S4D forward + backward on {env['device_name']} (torch threads: {env['threads']}), "
        f"B={env['batch']}, H={env['d_model']}, N={env['d_state']}, {env['repeats']} interleaved repeats; "
        "ms as median [q1, q3]",
        "",
        "| L | ours | peer | ours/peer | rel. error float32 |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        if r["status"] != "ok":
            lines.append(f"| {r['length']} | skipped | {r['reason']} | | |")
            continue
        cell = {
            name: f"{r[name]['median_s'] * 1e3:.1f} [{r[name]['q1_s'] * 1e3:.1f}, {r[name]['q3_s'] * 1e3:.1f}]"
            for name in ("ours", "peer")
        }
        lines.append(
            f"| {r['length']} | {cell['ours']} | {cell['peer']} | {r['ratio_ours_over_peer']:.3f} "
            f"| {r['relative_error']['float32']:.1e} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="1024,4096,16384", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--d-state", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--peer-limit-gb", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    env = {
        "created": stamp,
        "command": ["python", "benchmarks/s4d_peer.py", *(sys.argv[1:] if argv is None else argv)],
        **environment(device),
        "batch": args.batch,
        "d_model": args.d_model,
        "d_state": args.d_state,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "dtype": "float32",
        "pass": "forward_backward",
        "peer_limit_gib": args.peer_limit_gb,
        "seed": args.seed,
    }
    records = []
    for length in args.lengths:
        records.append(bench_length(length, args, device))
        print(table(records[-1:], env).splitlines()[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"s4d_peer_{stamp}.json"
    path.write_text(json.dumps({"meta": env, "records": records}, indent=1) + "\n")
    print(table(records, env))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
