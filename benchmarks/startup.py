"""How long ``lra-train`` takes to answer before any training, beside a bare Hydra application over the same configs.

The bare application is the few lines of ``@hydra.main`` a Hydra tutorial starts with, pointed at this
checkout's ``conf/`` and registering the resolvers the configs name (``lra_snn.config.register_with_hydra``),
so the difference is what the project adds before Hydra reads the command line. Each command runs as a
fresh process ``--repeats`` times, the two applications interleaved with alternating order; the report
gives each one's median wall time and the ratio ours / bare. The bare application prints Hydra's stock
help (``hydra/help=default``); ours prints the project's. Writes ``startup_<stamp>.json`` under ``--out``
and prints a markdown table.

    .venv/bin/python benchmarks/startup.py [--repeats 5] [--out results/bench]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lra_snn.config import CONF_DIR, PROJECT_ROOT

BARE_APP = f"""
import hydra
from lra_snn.config import register_with_hydra

register_with_hydra()


@hydra.main(version_base="1.3", config_path={str(CONF_DIR)!r}, config_name="train")
def main(cfg):
    pass


main()
"""

# name -> (command-line arguments, extra arguments for the bare app, environment)
COMMANDS: dict[str, tuple[list[str], list[str], dict[str, str]]] = {
    "--help": (["--help"], ["hydra/help=default"], {}),
    "model=s4d --cfg job": (["model=s4d", "--cfg", "job"], [], {}),
    "--info defaults": (["--info", "defaults"], [], {}),
    "refused override (modl=s4d)": (["modl=s4d"], [], {}),
    "completion (model=s<TAB>)": (
        ["-sc", "query=bash"],
        [],
        {"COMP_LINE": "lra-train model=s", "COMP_POINT": "17"},
    ),
}


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from starting ``argv`` as a process to its exit (output discarded; any exit status)."""
    started = time.perf_counter()
    subprocess.run(argv, env={**os.environ, **env}, cwd=PROJECT_ROOT, capture_output=True, timeout=120)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command per application (default 5)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "bench")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: give 1 or more")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare_hydra_app.py"
        bare.write_text(BARE_APP)
        for name, (command, bare_extra, env) in COMMANDS.items():
            calls = {
                "ours": [sys.executable, "-m", "lra_snn.train", *command],
                "bare": [sys.executable, str(bare), *command, *bare_extra],
            }
            times: dict[str, list[float]] = {"ours": [], "bare": []}
            for repeat in range(args.repeats):
                for side in ("ours", "bare") if repeat % 2 == 0 else ("bare", "ours"):
                    times[side].append(wall_time(calls[side], env))
            ours, theirs = statistics.median(times["ours"]), statistics.median(times["bare"])
            rows.append({"command": name, "ours_s": ours, "bare_s": theirs, "ratio": ours / theirs, "times": times})
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    load = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"startup_{stamp}.json"
    path.write_text(json.dumps({"repeats": args.repeats, "load_1min": load, "rows": rows}, indent=2) + "\n")
    print(f"lra-train against a bare Hydra app over the same conf/ (median of {args.repeats}; load {load:.1f})\n")
    print("| command | lra-train (s) | bare Hydra (s) | ratio |\n|---|---:|---:|---:|")
    for row in rows:
        print(f"| `{row['command']}` | {row['ours_s']:.2f} | {row['bare_s']:.2f} | {row['ratio']:.2f} |")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
