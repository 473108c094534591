"""Train the SDN's membrane predictor once (``make train-sdn``): random currents, exact LIF labels, regression.

``python -m lra_snn.cli.train_sdn [--n-train 50000] [--n-val 5000] [--length 1024] [--std 1.0] [--seed 0]
[--tau 0.125] [--v-th 1.0] [--epochs 100] [--batch 64] [--threads 1] [--out FILE] [--report DIR]``

SpikingSSMs (Shen et al., AAAI 2025, arXiv 2408.14909) train their surrogate dynamic network this way
(docs/neurons.md, section 9):

1. currents ``x ~ N(0, std^2)``, ``n_train`` training and ``n_val`` validation sequences of ``length``
   steps, seeded;
2. labels: the exact hard-reset LIF's decayed potential before each input, ``m_t = tau u_{t-1}``
   (``lif_membrane``);
3. the SDN (``lra_snn.neurons.sdn.SurrogateDynamicNetwork``) fitted by SmoothL1 regression, AdamW
   (lr 0.01, weight decay 0.01), cosine schedule over the epochs, batches of 64, on the CPU; one line
   per epoch (training loss, validation error and spike agreement).

Writes the evaluation-mode weights and BatchNorm statistics (exact floats, with the settings) to
``--out`` (default: the shipped file under ``lra_snn/neurons/sdn_weights/``) and a report
(``report.json``, ``report.md``) to ``--report`` (default ``results/sdn/``): on fresh held-out currents
at the training scale and at others (std 0.5 and 2, mean 0.3), the potential's mean and largest
absolute error and the spike agreement, evaluated with the folded predictor the neuron runs.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lra_snn.config import PROJECT_ROOT
from lra_snn.neurons.sdn import KERNEL, WEIGHTS_DIR, WEIGHTS_FORMAT, WIDTH, MembranePredictor, SurrogateDynamicNetwork
from lra_snn.results.atomic import write_atomically

LEARNING_RATE = 0.01
WEIGHT_DECAY = 0.01
EVAL_CHUNK = 512  # sequences per forward when evaluating
# held-out input distributions of the report besides the training one: (name, mean, std)
OTHER_SCALES = (("N(0, 0.5^2)", 0.0, 0.5), ("N(0, 2^2)", 0.0, 2.0), ("N(0.3, 1)", 0.3, 1.0))


def lif_membrane(x: Tensor, tau: float, v_th: float) -> tuple[Tensor, Tensor]:
    """The exact hard-reset LIF on currents ``x`` (N, L), all sequences at once: its decayed potential
    before each input, ``m_t = tau u_{t-1}``, and its spikes. The definition (SpikingSSMs), ``u_0 = 0``:
    ``u_t = tau u_{t-1} + x_t``, ``s_t = H(u_t - v_th)``, ``u_t <- (1 - s_t) u_t``."""
    u = torch.zeros_like(x[:, 0])
    potentials, spikes = [], []
    for x_t in x.unbind(1):
        m_t = tau * u
        u = m_t + x_t
        s_t = (u >= v_th).to(x.dtype)
        u = (1 - s_t) * u
        potentials.append(m_t)
        spikes.append(s_t)
    return torch.stack(potentials, 1), torch.stack(spikes, 1)


def currents(n: int, length: int, mean: float, std: float, seed: int) -> Tensor:
    """``n`` sequences of ``length`` currents drawn from N(mean, std^2) (float32, seeded)."""
    return torch.randn(n, length, generator=torch.Generator().manual_seed(seed)) * std + mean


def agreement(predicted: Tensor, x: Tensor, mem: Tensor, spikes: Tensor, v_th: float) -> dict[str, float]:
    """How closely the predicted potentials reproduce the LIF: their error and the spikes they give."""
    error = (predicted - mem).abs()
    fired = (predicted + x - v_th >= 0).to(x.dtype)
    return {
        "loss": F.smooth_l1_loss(predicted, mem).item(),
        "mem_mae": error.mean().item(),
        "mem_max_abs_error": error.max().item(),
        "spike_agreement": (fired == spikes).double().mean().item(),
        "firing_rate_exact": spikes.double().mean().item(),
        "firing_rate_predicted": fired.double().mean().item(),
    }


@torch.no_grad()
def predict(model: torch.nn.Module, x: Tensor) -> Tensor:
    """The model's potentials for ``x`` (N, L), in evaluation mode, chunk by chunk."""
    model.eval()
    return torch.cat([model(part) for part in x.split(EVAL_CHUNK)])


def train_epoch(
    network: SurrogateDynamicNetwork,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    mem: Tensor,
    batch: int,
    shuffle: torch.Generator,
) -> float:
    """One pass over the training set in an order drawn from ``shuffle``; the mean SmoothL1 loss."""
    network.train()
    order = torch.randperm(x.shape[0], generator=shuffle)
    losses = []
    for index in order.split(batch):
        loss = F.smooth_l1_loss(network(x[index]), mem[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def weight_file(network: SurrogateDynamicNetwork, settings: dict[str, Any]) -> dict[str, Any]:
    """The weight file's content: format, architecture, the LIF it predicts, how it was trained, the weights."""
    return {
        "format": WEIGHTS_FORMAT,
        "architecture": {"width": WIDTH, "kernel": KERNEL, "norm_eps": network.depthwise_norm.eps},
        "lif": {"tau": settings["tau"], "v_th": settings["v_th"], "reset": 0.0},
        "training": settings,
        "weights": network.eval_weights(),
    }


def weight_file_text(content: dict[str, Any]) -> str:
    """``content`` as JSON, each tensor's values (exact float text) on one line."""
    settings = json.dumps({key: value for key, value in content.items() if key != "weights"}, indent=1)
    weights = ",\n".join(f"  {json.dumps(name)}: {json.dumps(values)}" for name, values in content["weights"].items())
    return settings.removesuffix("\n}") + ',\n "weights": {\n' + weights + "\n }\n}\n"


def held_out(predictor: MembranePredictor, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The folded predictor on fresh currents at the training scale and at ``OTHER_SCALES``; beside each,
    the agreement of a neuron without memory (``m = 0``: ``H(x - v_th)``), for scale."""
    rows = []
    scales = (("N(0, 1)" if args.std == 1.0 else f"N(0, {args.std:g}^2)", 0.0, args.std), *OTHER_SCALES)
    for index, (name, mean, std) in enumerate(scales):
        x = currents(args.n_val, args.length, mean, std, args.seed + 2 + index)
        mem, spikes = lif_membrane(x, args.tau, args.v_th)
        scores = agreement(predict(predictor, x), x, mem, spikes, args.v_th)
        without_memory = agreement(torch.zeros_like(x), x, mem, spikes, args.v_th)["spike_agreement"]
        rows.append(
            {"inputs": name, "mean": mean, "std": std, **scores, "spike_agreement_without_memory": without_memory}
        )
    return rows


def shown(path: Path) -> str:
    """``path`` relative to the project root when it lies inside it (as the report names it)."""
    path = path.resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def markdown(report: dict[str, Any]) -> str:
    """The report's short human-readable form."""
    settings = report["settings"]
    lines = [
        "# SDN membrane predictor: training report",
        "",
        f"Command: `{report['command']}` ({report['wall_s'] / 60:.1f} min wall, torch {report['torch']}, "
        f"{settings['threads']} thread(s)).",
        "",
        f"LIF: tau = {settings['tau']:g}, V_th = {settings['v_th']:g}, hard reset to 0. Training: "
        f"{settings['n_train']:,} sequences x {settings['length']:,} steps of N(0, {settings['std']:g}^2), "
        f"{settings['epochs']} epochs, batch {settings['batch']}, AdamW lr {LEARNING_RATE:g} wd {WEIGHT_DECAY:g}, "
        f"cosine, SmoothL1; final training loss {report['final_loss']:.3e}. Weights: `{report['weights']}`.",
        "",
        f"Held out ({settings['n_val']:,} fresh sequences x {settings['length']:,} steps per row), the folded "
        "predictor as the neuron runs it. Agreement: the fraction of steps where H(m_pred + x - V_th) equals the "
        'exact LIF\'s spike; "without memory": the same for m = 0, i.e. H(x - V_th).',
        "",
        "| inputs | mean abs error of m | max abs error | spike agreement | without memory | rate exact | rate SDN |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['inputs']} | {row['mem_mae']:.2e} | {row['mem_max_abs_error']:.3f} | {row['spike_agreement']:.5f} "
        f"| {row['spike_agreement_without_memory']:.5f} | {row['firing_rate_exact']:.4f} "
        f"| {row['firing_rate_predicted']:.4f} |"
        for row in report["held_out"]
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lra_snn.cli.train_sdn", description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=50_000, help="training sequences")
    parser.add_argument("--n-val", type=int, default=5_000, help="validation sequences (and per held-out scale)")
    parser.add_argument("--length", type=int, default=1024, help="steps per sequence")
    parser.add_argument("--std", type=float, default=1.0, help="standard deviation of the training currents")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tau", type=float, default=0.125, help="the LIF's multiplicative decay")
    parser.add_argument("--v-th", type=float, default=1.0, help="the LIF's threshold")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="weight file (default: sdn_weights/tau<tau>.json)")
    parser.add_argument("--report", type=Path, default=PROJECT_ROOT / "results" / "sdn", help="report folder")
    args = parser.parse_args(argv)
    for name in ("n_train", "n_val", "length", "epochs", "batch", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    if args.out is None:
        args.out = WEIGHTS_DIR / (
            f"tau{args.tau:g}.json" if args.v_th == 1.0 else f"tau{args.tau:g}_vth{args.v_th:g}.json"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    x_train = currents(args.n_train, args.length, 0.0, args.std, args.seed)
    x_val = currents(args.n_val, args.length, 0.0, args.std, args.seed + 1)
    mem_train, _ = lif_membrane(x_train, args.tau, args.v_th)
    mem_val, spikes_val = lif_membrane(x_val, args.tau, args.v_th)

    torch.manual_seed(args.seed)
    network = SurrogateDynamicNetwork()
    optimizer = torch.optim.AdamW(network.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
    untrained = agreement(predict(network, x_val), x_val, mem_val, spikes_val, args.v_th)
    shuffle = torch.Generator().manual_seed(args.seed)
    history: list[dict[str, Any]] = []
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        loss = train_epoch(network, optimizer, x_train, mem_train, args.batch, shuffle)
        schedule.step()
        val = agreement(predict(network, x_val), x_val, mem_val, spikes_val, args.v_th)
        history.append({"epoch": epoch, "train_loss": loss, **{f"val_{key}": value for key, value in val.items()}})
        print(
            f"epoch {epoch:3d}/{args.epochs}  loss {loss:.4e}  val mae {val['mem_mae']:.4e}  "
            f"val max {val['mem_max_abs_error']:.3f}  val agreement {val['spike_agreement']:.5f}  "
            f"{time.perf_counter() - epoch_start:.1f} s",
            flush=True,
        )

    settings = {key: getattr(args, key) for key in ("n_train", "n_val", "length", "std", "seed", "tau", "v_th")}
    settings |= {"epochs": args.epochs, "batch": args.batch, "threads": args.threads, "torch": torch.__version__}
    stored = weight_file(network, settings)
    write_atomically(args.out, weight_file_text(stored))
    rows = held_out(MembranePredictor(stored["weights"], stored["architecture"]["norm_eps"]), args)
    report: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "lra_snn.cli.train_sdn", *(sys.argv[1:] if argv is None else argv)]),
        "wall_s": time.perf_counter() - started,
        "torch": torch.__version__,
        "settings": settings,
        "weights": shown(args.out),
        "final_loss": history[-1]["train_loss"],
        "untrained": untrained,
        "history": history,
        "held_out": rows,
    }
    write_atomically(args.report / "report.json", json.dumps(report, indent=1) + "\n")
    write_atomically(args.report / "report.md", markdown(report))
    print(markdown(report))
    return 0 if all(math.isfinite(row["mem_mae"]) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
