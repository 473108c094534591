"""Command line of the leaderboard: every run's ``result.json`` -> ``leaderboard.md`` and ``leaderboard.csv``.

The markdown is also printed. Reading the result files is ``lra_snn.results.runs``, grouping and
statistics ``lra_snn.results.board``, the published numbers ``lra_snn.results.reference``, the
comparison with shipped runs ``lra_snn.results.reproduction`` and the two files ``lra_snn.results.render``.
By default it renders the shipped board: the reference runs in ``results/reference-runs`` into
``results/``. A board of your own runs goes beside them, e.g.

    python -m lra_snn.cli.leaderboard --results results/local/runs --out results/local \
        --reference-runs results/reference-runs

    python -m lra_snn.cli.leaderboard [--results DIR] [--out DIR] [--reference FILE] [--profile P]
                                      [--reference-runs DIR]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from lra_snn.config import locations
from lra_snn.config.locations import inside_shipped_runs, shipped_runs_refusal
from lra_snn.results.manifest import write_manifest
from lra_snn.results.reference import PUBLISHED_FILE
from lra_snn.results.render import build_leaderboard, write_leaderboard
from lra_snn.results.runs import PROFILES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lra_snn.cli.leaderboard",
        description="Turn result.json files into results/leaderboard.md and .csv beside the published numbers.",
    )
    parser.add_argument(
        "--results", default="results/reference-runs", help="folder searched recursively for result.json"
    )
    parser.add_argument("--out", default="results", help="folder that receives leaderboard.md and leaderboard.csv")
    parser.add_argument(
        "--reference",
        type=Path,
        default=PUBLISHED_FILE,
        help="published numbers with citations (default: the packaged lra_snn/results/reference.yaml)",
    )
    parser.add_argument("--profile", choices=PROFILES, help="keep only this profile's runs")
    parser.add_argument(
        "--write-manifest",
        action="store_true",
        help="record the digests of the shipped runs' files in results/reference-runs.manifest.json and stop "
        "(after replacing the shipped runs on purpose)",
    )
    parser.add_argument(
        "--reference-runs",
        help="folder of shipped runs (results/reference-runs) to compare each cell with: adds reproduction verdicts",
    )
    return parser.parse_args(argv)


def rows_on_board(out: Path) -> int:
    """The rows of the board already in ``out`` (its leaderboard.csv, header aside; 0 without one)."""
    board = out / "leaderboard.csv"
    if not board.is_file():
        return 0
    with board.open(encoding="utf-8", newline="") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.write_manifest:
        count = write_manifest(locations.SHIPPED_RUNS_DIR, locations.SHIPPED_MANIFEST)
        print(f"recorded the digests of {count} files of {locations.SHIPPED_RUNS_DIR} in {locations.SHIPPED_MANIFEST}")
        return 0
    if not Path(args.results).is_dir():
        sys.stderr.write(
            f"--results {args.results}: no such folder; nothing was written (your runs: results/local/runs, "
            "the shipped runs: results/reference-runs)\n"
        )
        return 2
    if inside_shipped_runs(args.out):
        sys.stderr.write(shipped_runs_refusal("--out", args.out) + "\n")
        return 2
    if args.reference_runs is not None and not Path(args.reference_runs).is_dir():
        sys.stderr.write(
            f"--reference-runs {args.reference_runs}: no such folder (the shipped runs: results/reference-runs)\n"
        )
        return 2
    markdown, rows = build_leaderboard(
        args.results, args.reference, profile=args.profile, reference_runs=args.reference_runs
    )
    kept = rows_on_board(Path(args.out))
    if not rows and kept:
        sys.stderr.write(
            f"no usable result under --results {args.results} (see the notes below), so the board in {args.out} "
            f"({kept} rows) is left as it is: check --results, or delete {Path(args.out) / 'leaderboard.csv'} "
            "first to write an empty board there\n"
        )
        sys.stdout.write(markdown)
        return 2
    write_leaderboard(markdown, rows, args.out)
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
