"""Re-run one experiment cell from its ``result.json`` and compare the metrics with the recorded ones.

The recorded ``config`` is the fully resolved config the run used, so it is rebuilt as is (not
recomposed from today's ``conf/``, which may have changed); only its paths are re-pointed to
this machine: the recorded data folder becomes ``--data-dir`` (default: this project's ``data/``),
the recorded outputs and results go under a fresh ``--out`` folder, and any other path under the
recorded project root moves to this project root. The rebuilt config must hash to the recorded
``config_hash`` (paths are not hashed). Every recorded metric must then match within
``--tolerance`` (absolute; 0 means bit-identical, which needs ``trainer.deterministic=true`` and
the same hardware and library versions).

    lra-reproduce results/runs/<profile>/<task>/<model>/<hash>/seed_<n>/result.json [--tolerance 0]
                  [--out DIR] [--data-dir DIR] [key=value ...]

Extra ``key=value`` arguments override the rebuilt config (e.g. ``trainer.accelerator=cpu``);
an override of a hashed setting makes it a different cell, so the hash check is skipped then.
Exit status: 0 all metrics match, 1 a mismatch (or a failed rerun), 2 an unusable result file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lra_snn.config import PROJECT_ROOT, cell_hash

_PATH_KEYS = ("run_dir", "result_file", "output_dir", "results_dir", "data_dir", "root_dir")


class ReproduceError(ValueError):
    """The result file cannot be re-run (not completed, no recorded config, bad override)."""


def load_record(path: Path) -> dict[str, Any]:
    """The completed result record at ``path`` with its resolved config."""
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReproduceError(f"{path}: no such result file") from None
    except json.JSONDecodeError as err:
        raise ReproduceError(f"{path}: not JSON ({err})") from None
    if record.get("status") != "completed":
        raise ReproduceError(f"{path}: status is {record.get('status')!r}; only completed runs can be reproduced")
    if not isinstance(record.get("config"), dict) or not isinstance(record.get("metrics"), dict):
        raise ReproduceError(f"{path}: lacks the recorded 'config' or 'metrics' (written by lra_snn.cli.train?)")
    return record


def new_locations(old_paths: dict[str, str], out: Path, data_dir: Path) -> dict[str, str]:
    """Where each recorded path goes on this machine: outputs and results under ``out``."""
    cell = old_paths["cell"]
    return {"root_dir": str(PROJECT_ROOT), "data_dir": str(data_dir),
            "output_dir": str(out / "outputs"), "results_dir": str(out / "results"),
            "run_dir": str(out / "outputs" / "runs" / cell),
            "result_file": str(out / "results" / "runs" / cell / "result.json")}


def repoint(value: Any, moves: list[tuple[str, str]]) -> Any:
    """``value`` with every string that starts with an old path re-rooted at its new path."""
    if isinstance(value, dict):
        return {key: repoint(item, moves) for key, item in value.items()}
    if isinstance(value, list):
        return [repoint(item, moves) for item in value]
    if isinstance(value, str):
        for old, new in moves:
            if value == old or value.startswith(old.rstrip("/") + "/"):
                return new + value[len(old.rstrip("/")):]
    return value


def rebuild_config(record: dict[str, Any], out: Path, data_dir: Path, overrides: list[str]) -> DictConfig:
    """The recorded config with paths re-pointed, ``skip_completed`` off, then ``overrides`` applied."""
    config = record["config"]
    old_paths = config.get("paths") or {}
    missing = [key for key in ("cell", *_PATH_KEYS) if not isinstance(old_paths.get(key), str)]
    if missing:
        raise ReproduceError(f"the recorded config lacks paths.{', paths.'.join(missing)}")
    new_paths = new_locations(old_paths, out, data_dir)
    moves = [(old_paths[key], new_paths[key]) for key in _PATH_KEYS]  # most specific first
    cfg = OmegaConf.create(repoint(config, moves))
    cfg.skip_completed = False
    try:
        merged = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    except Exception as err:
        raise ReproduceError(f"bad override in {overrides}: {err}") from None
    assert isinstance(merged, DictConfig)
    return merged


def compare_metrics(recorded: dict[str, float], rerun: dict[str, float], tolerance: float) -> list[dict]:
    """One row per recorded metric: both values, the absolute difference and whether it is within tolerance."""
    rows = []
    for name in sorted(recorded):
        old, new = recorded[name], rerun.get(name)
        if new is None:
            rows.append({"metric": name, "recorded": old, "rerun": None, "diff": None, "ok": False})
            continue
        both_nan = isinstance(old, float) and math.isnan(old) and math.isnan(new)
        diff = 0.0 if both_nan else abs(new - old)
        rows.append({"metric": name, "recorded": old, "rerun": new, "diff": diff, "ok": diff <= tolerance})
    return rows


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of the comparison."""
    lines = [f"{'metric':<28} {'recorded':>22} {'rerun':>22} {'|diff|':>10}  ok"]
    for r in rows:
        rerun = "missing" if r["rerun"] is None else repr(r["rerun"])
        diff = "-" if r["diff"] is None else f"{r['diff']:.3g}"
        lines.append(f"{r['metric']:<28} {r['recorded']!r:>22} {rerun:>22} {diff:>10}  {'yes' if r['ok'] else 'NO'}")
    return "\n".join(lines)


def reproduce(path: Path, out: Path, data_dir: Path, tolerance: float, overrides: list[str]) -> tuple[bool, dict]:
    """Re-run the cell of ``path`` into ``out``; (all metrics match, report)."""
    from lra_snn.cli.train import run  # heavy import (Lightning) only once the input is known to be usable

    record = load_record(path)
    cfg = rebuild_config(record, out, data_dir, overrides)
    rebuilt_hash = cell_hash(cfg)
    if not overrides and rebuilt_hash != record.get("config_hash"):
        raise ReproduceError(f"{path}: the recorded config hashes to {rebuilt_hash}, not the recorded "
                             f"config_hash {record.get('config_hash')}: the file was edited or the hash changed")
    if Path(cfg.paths.run_dir).exists():
        raise ReproduceError(f"{cfg.paths.run_dir} exists (a rerun would resume from it); pass a new --out")
    try:
        rerun = run(cfg)
    except Exception as err:  # a failed rerun is an answer too: reported, exit status 1
        return False, {"status": "failed", "message": f"{type(err).__name__}: {err}", "rows": []}
    if rerun.get("status") != "completed":
        return False, {"status": rerun.get("status"), "message": rerun.get("message"), "rows": []}
    rows = compare_metrics(record["metrics"], rerun["metrics"], tolerance)
    notes = []
    if not cfg.trainer.get("deterministic"):
        notes.append("trainer.deterministic was false: bit-identical metrics are not guaranteed (use --tolerance)")
    if record.get("git_commit") != rerun.get("git_commit"):
        notes.append(f"code differs: recorded commit {record.get('git_commit')}, now {rerun.get('git_commit')}")
    if record.get("versions") != rerun.get("versions"):
        notes.append(f"library versions differ: recorded {record.get('versions')}, now {rerun.get('versions')}")
    report = {"status": "completed", "rows": rows, "notes": notes, "result_file": str(cfg.paths.result_file)}
    return all(r["ok"] for r in rows), report


def default_out() -> Path:
    """A fresh folder per call: ``outputs/reproduce/<timestamp>``."""
    return PROJECT_ROOT / "outputs" / "reproduce" / dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lra-reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path, help="the result.json of the cell to re-run")
    parser.add_argument("overrides", nargs="*", help="key=value changes to the rebuilt config")
    parser.add_argument("--tolerance", type=float, default=0.0, help="largest absolute difference accepted (0: exact)")
    parser.add_argument("--out", type=Path, default=None, help="fresh folder for the rerun's outputs and results")
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / "data", help="this machine's data folder")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.tolerance < 0:
        parser.error(f"--tolerance must be >= 0, got {args.tolerance}")
    bad = [item for item in args.overrides if "=" not in item]
    if bad:
        parser.error(f"overrides must look like key=value, got {bad}")
    try:
        ok, report = reproduce(args.result, args.out or default_out(), args.data_dir, args.tolerance, args.overrides)
    except ReproduceError as err:
        print(f"lra-reproduce: {err}", file=sys.stderr)
        return 2
    if report["status"] != "completed":
        print(f"lra-reproduce: the rerun did not complete ({report['status']}): {report['message']}", file=sys.stderr)
        return 1
    print(format_rows(report["rows"]))
    for note in report["notes"]:
        print(f"note: {note}")
    print(f"rerun result: {report['result_file']}")
    print("reproduced: every metric matches" if ok else f"NOT reproduced: metrics differ beyond {args.tolerance}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
