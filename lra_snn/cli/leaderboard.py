"""Command line of the leaderboard: every run's ``result.json`` -> ``leaderboard.md`` and ``leaderboard.csv``.

The markdown is also printed. Reading the result files is ``lra_snn.results.runs``, grouping and
statistics ``lra_snn.results.board``, the published numbers ``lra_snn.results.reference`` and the
two files ``lra_snn.results.render``.

    python -m lra_snn.cli.leaderboard [--results DIR] [--out DIR] [--reference FILE] [--profile P]
"""

from __future__ import annotations

import argparse
import sys

from lra_snn.results.render import build_leaderboard, write_leaderboard
from lra_snn.results.runs import PROFILES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lra_snn.cli.leaderboard",
        description="Turn result.json files into results/leaderboard.md and .csv beside the published numbers.",
    )
    parser.add_argument("--results", default="results/runs", help="folder searched recursively for result.json")
    parser.add_argument("--out", default="results", help="folder that receives leaderboard.md and leaderboard.csv")
    parser.add_argument("--reference", default="results/reference.yaml", help="published numbers with citations")
    parser.add_argument("--profile", choices=PROFILES, help="keep only this profile's runs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    markdown, rows = build_leaderboard(args.results, args.reference, profile=args.profile)
    write_leaderboard(markdown, rows, args.out)
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
