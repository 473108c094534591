"""Figures of the benchmark from result files alone, as PNG and PDF (docs/figures.md).

Everything they read travels with a clone: each run's ``result.json``, the ``metrics.csv`` it names
and the bench JSON files. Into ``--out`` go, each as ``.png`` and ``.pdf``:

- ``acc_vs_energy_<profile>_<task>``: test accuracy against estimated energy per example, one
  labelled marker per model, 95 % Wilson intervals and seed ranges (``figure_energy``);
- ``curves_<profile>_<task>``: validation accuracy and loss per epoch, one panel pair per model
  (``figure_curves``);
- ``bench_speedup_<device>``: sequential / parallel time per neuron against L (``figure_bench``);

and ``figures.json``, the digests of what each figure was drawn from (``figure_manifest``). Each
model has one style in every figure (``figure_style``). Every cell or seed a figure leaves out is
named in a printed line ``plots: left out of <figure>: <profile>/<task>/<model> config <hash>: <why>``.

``make plots`` draws your runs (``results/local/runs``) into the git-ignored
``results/local/figures``, the defaults below; ``make figures`` draws the shipped runs
(``results/reference-runs``) into ``results/figures``, the figures the README embeds.

    python -m lra_snn.cli.plots [--results results/local/runs] [--bench results/bench] [--out results/local/figures]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lra_snn.config.locations import PROJECT_ROOT, inside_shipped_runs, shipped_runs_refusal

MISSING_MATPLOTLIB = "lra-plots needs matplotlib: pip install 'lra-snn[plots]'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lra_snn.cli.plots", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--results",
        type=Path,
        default=PROJECT_ROOT / "results" / "local" / "runs",
        help="folder searched for result.json files (results/local/runs: your runs; results/reference-runs: shipped)",
    )
    parser.add_argument(
        "--bench", type=Path, default=PROJECT_ROOT / "results" / "bench", help="folder of bench_*.json files"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / "results" / "local" / "figures",
        help="folder for the figures and figures.json",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if inside_shipped_runs(args.out):
        print(f"lra-plots: {shipped_runs_refusal('--out', args.out)}", file=sys.stderr)
        return 2
    try:
        import matplotlib  # noqa: F401  (only to tell a missing extra apart)
    except ImportError:
        print(MISSING_MATPLOTLIB, file=sys.stderr)
        return 2
    from lra_snn.cli.figure_drawing import draw_all

    for path in draw_all(args.results, args.bench, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
