"""Re-run one experiment cell from its ``result.json`` and compare the metrics with the recorded ones.

The recorded ``config`` is the fully resolved config the run used, so it is rebuilt as is (not
recomposed from today's ``conf/``, which may have changed); only its paths are re-pointed to
this machine: the recorded data folder becomes ``--data-dir`` (default: this project's ``data/``),
the recorded outputs and results go under a fresh ``--out`` folder, and any other path under the
recorded project root moves to this project root.

Before anything is built, the recorded config is checked: every ``_target_`` in it must be one the
configs under ``conf/`` use (``lra_snn.config.provenance.ALLOWED_TARGETS``), it must hash to the
recorded ``config_hash`` and digest to the recorded ``instantiated_digest`` (which also covers the
callbacks and logger sections), and every absolute path in its callbacks and logger sections must
lie under ``--out`` once re-pointed. A schema-1 result records no digest: it is refused unless
``--trust-config`` is given. Every recorded metric must then match within ``--tolerance``
(absolute; 0 means bit-identical, which needs ``trainer.deterministic=true`` and the same hardware
and library versions).

    lra-reproduce results/reference-runs/<profile>/<task>/<model>/<hash>/seed_<n>/result.json [--tolerance 0]
                  [--out DIR] [--data-dir DIR] [--trust-config] [key=value ...]

Extra ``key=value`` arguments override the rebuilt config (e.g. ``trainer.accelerator=cpu``). The
checks above still apply to the recorded config; the overridden config's hash and digest are
printed beside the recorded ones as a deliberate difference.
Exit status: 0 all metrics match, 1 a mismatch (or a failed rerun), 2 an unusable or refused result file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lra_snn.config import PROJECT_ROOT, cell_hash
from lra_snn.config.locations import inside_shipped_runs, shipped_runs_refusal
from lra_snn.config.provenance import absolute_paths, foreign_targets_message, instantiated_digest
from lra_snn.results.record import read_result
from lra_snn.results.schema import ResultFileError, ResultRecord

_PATH_KEYS = ("run_dir", "result_file", "output_dir", "results_dir", "data_dir", "root_dir")
_WRITING_SECTIONS = ("callbacks", "logger")
# the keys of the callbacks and loggers that name where they write; a relative value is taken under --out
_WRITER_PATH_KEYS = ("dirpath", "save_dir", "dir", "log_dir", "default_root_dir")


class ReproduceError(ValueError):
    """The result file cannot be re-run (unreadable, not completed, edited, a foreign target, a bad override)."""


def load_record(path: Path) -> ResultRecord:
    """The completed result record at ``path`` with its resolved config."""
    try:
        record = read_result(path)
    except ResultFileError as err:
        raise ReproduceError(str(err)) from None
    if record is None:
        raise ReproduceError(f"{path}: no such result file")
    if record.status != "completed":
        raise ReproduceError(f"{path}: status is {record.status!r}; only completed runs can be reproduced")
    if not record.config or not record.metrics:
        raise ReproduceError(f"{path}: lacks the recorded 'config' or 'metrics' (written by lra_snn.training.cell?)")
    return record


def check_targets(config: Mapping[Any, Any], where: str) -> None:
    """ReproduceError naming ``where`` and the key of every ``_target_`` that the project's configs do not use."""
    refusal = foreign_targets_message(config, where)
    if refusal:
        raise ReproduceError(refusal)


def verify_recorded(record: ResultRecord, path: Path, trust_config: bool) -> list[str]:
    """Check the recorded config against its recorded hash and digest; notes on what could not be checked."""
    rebuilt_hash = cell_hash(OmegaConf.create(record.config))
    if rebuilt_hash != record.config_hash:
        raise ReproduceError(
            f"{path}: the recorded config hashes to {rebuilt_hash}, not the recorded "
            f"config_hash {record.config_hash}: the file was edited or the hash changed"
        )
    if record.instantiated_digest is None:
        if not trust_config:
            raise ReproduceError(
                f"{path}: schema {record.schema_version} records no instantiated_digest, so its callbacks and "
                "logger sections cannot be checked; pass --trust-config to re-run it anyway, or train the cell "
                "again for a current result file"
            )
        return [f"schema {record.schema_version} result: callbacks and logger sections not checked (--trust-config)"]
    digest = instantiated_digest(record.config)
    if digest != record.instantiated_digest:
        raise ReproduceError(
            f"{path}: the recorded config digests to {digest}, not the recorded instantiated_digest "
            f"{record.instantiated_digest}: the file was edited (e.g. its callbacks or logger)"
        )
    return []


def check_writes_inside(cfg: DictConfig, out: Path) -> None:
    """ReproduceError unless every absolute path in the callbacks and logger sections is under ``out``."""
    root = Path(os.path.normpath(os.path.abspath(out)))
    for section in _WRITING_SECTIONS:
        for key, value in absolute_paths(OmegaConf.to_container(cfg.get(section) or {}, resolve=True), f"{section}."):
            if not Path(os.path.normpath(value)).is_relative_to(root):
                raise ReproduceError(
                    f"{key} = {value!r} is outside the rerun folder {root}: a callback or logger "
                    "would write there; correct the result file or override the key"
                )


def new_locations(old_paths: dict[str, str], out: Path, data_dir: Path) -> dict[str, str]:
    """Where each recorded path goes on this machine: outputs and results under ``out``."""
    cell = old_paths["cell"]
    return {
        "root_dir": str(PROJECT_ROOT),
        "data_dir": str(data_dir),
        "output_dir": str(out / "outputs"),
        "results_dir": str(out / "results"),
        "run_dir": str(out / "outputs" / "runs" / cell),
        "result_file": str(out / "results" / "runs" / cell / "result.json"),
    }


def repoint(value: Any, moves: list[tuple[str, str]]) -> Any:
    """``value`` with every string that starts with an old path re-rooted at its new path."""
    if isinstance(value, dict):
        return {key: repoint(item, moves) for key, item in value.items()}
    if isinstance(value, list):
        return [repoint(item, moves) for item in value]
    if isinstance(value, str):
        for old, new in moves:
            if value == old or value.startswith(old.rstrip("/") + "/"):
                return new + value[len(old.rstrip("/")) :]
    return value


def anchor_relative_writers(value: Any, out: Path) -> Any:
    """``value`` (a callbacks or logger section) with every relative path under a ``_WRITER_PATH_KEYS`` key
    taken under ``out``, so nothing is written relative to the working folder."""
    if isinstance(value, dict):
        return {
            key: str(out / item)
            if key in _WRITER_PATH_KEYS and isinstance(item, str) and item and not os.path.isabs(item)
            else anchor_relative_writers(item, out)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [anchor_relative_writers(item, out) for item in value]
    return value


def rebuild_config(record: ResultRecord, out: Path, data_dir: Path, overrides: list[str]) -> DictConfig:
    """The recorded config with paths re-pointed, ``skip_completed`` off, then ``overrides`` applied."""
    config = record.config
    old_paths = config.get("paths") or {}
    missing = [key for key in ("cell", *_PATH_KEYS) if not isinstance(old_paths.get(key), str)]
    if missing:
        raise ReproduceError(f"the recorded config lacks paths.{', paths.'.join(missing)}")
    new_paths = new_locations(old_paths, out, data_dir)
    moves = [(old_paths[key], new_paths[key]) for key in _PATH_KEYS]  # most specific first
    moved = repoint(config, moves)
    for section in _WRITING_SECTIONS:
        if isinstance(moved.get(section), dict):
            moved[section] = anchor_relative_writers(moved[section], out)
    cfg = OmegaConf.create(moved)
    cfg.skip_completed = False
    try:
        merged = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    except Exception as err:
        raise ReproduceError(f"bad override in {overrides}: {err}") from None
    assert isinstance(merged, DictConfig)
    return merged


def compare_metrics(recorded: dict[str, float | None], rerun: dict[str, float | None], tolerance: float) -> list[dict]:
    """One row per recorded metric: both values, the absolute difference and whether it is within tolerance
    (a metric recorded as null matches only null)."""
    rows = []
    for name in sorted(recorded):
        old, new = recorded[name], rerun.get(name)
        if old is None or new is None:
            both_null = old is None and new is None
            rows.append({"metric": name, "recorded": old, "rerun": new, "diff": None, "ok": both_null})
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


def reproduce(
    path: Path, out: Path, data_dir: Path, tolerance: float, overrides: list[str], trust_config: bool = False
) -> tuple[bool, dict]:
    """Check and re-run the cell of ``path`` into ``out``; (all metrics match, report)."""
    record = load_record(path)
    check_targets(record.config, str(path))
    notes = verify_recorded(record, path, trust_config)
    cfg = rebuild_config(record, out, data_dir, overrides)
    rebuilt = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(rebuilt, dict)
    check_targets(rebuilt, f"{path} with overrides {overrides}")
    check_writes_inside(cfg, out)
    config = {
        "overrides": overrides,
        "recorded_hash": record.config_hash,
        "rerun_hash": cell_hash(cfg),
        "recorded_digest": record.instantiated_digest,
        "rerun_digest": instantiated_digest(rebuilt),
    }
    if Path(cfg.paths.run_dir).exists():
        raise ReproduceError(f"{cfg.paths.run_dir} exists (a rerun would resume from it); pass a new --out")

    from lra_snn.training.cell import run  # heavy import (Lightning) only once the input is known to be usable

    try:
        rerun = run(cfg)
    except Exception as err:  # a failed rerun is an answer too: reported, exit status 1
        return False, {"status": "failed", "message": f"{type(err).__name__}: {err}", "rows": [], "config": config}
    if rerun.get("status") != "completed":
        return False, {"status": rerun.get("status"), "message": rerun.get("message"), "rows": [], "config": config}
    rows = compare_metrics(record.metrics, rerun["metrics"], tolerance)
    if not cfg.trainer.get("deterministic"):
        notes.append("trainer.deterministic was false: bit-identical metrics are not guaranteed (use --tolerance)")
    if record.git_commit != rerun.get("git_commit"):
        notes.append(f"code differs: recorded commit {record.git_commit}, now {rerun.get('git_commit')}")
    if record.versions != rerun.get("versions"):
        notes.append(f"library versions differ: recorded {record.versions}, now {rerun.get('versions')}")
    report = {
        "status": "completed",
        "rows": rows,
        "notes": notes,
        "result_file": str(cfg.paths.result_file),
        "config": config,
    }
    return all(r["ok"] for r in rows), report


def config_lines(config: dict) -> list[str]:
    """How the re-run config relates to the recorded one: the same, or which overrides changed hash and digest."""
    same = config["rerun_hash"] == config["recorded_hash"] and config["recorded_digest"] in (
        None,
        config["rerun_digest"],
    )
    if same:
        return [f"config: as recorded (hash {config['recorded_hash']}, digest {config['rerun_digest']})"]
    return [
        f"config: deliberately different (overrides {' '.join(config['overrides'])})",
        f"  config hash  recorded {config['recorded_hash']}  rerun {config['rerun_hash']}",
        f"  digest       recorded {config['recorded_digest']}  rerun {config['rerun_digest']}",
    ]


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
    parser.add_argument(
        "--trust-config",
        action="store_true",
        help="re-run a schema-1 result, which records no digest of its callbacks and logger",
    )
    args = parser.parse_intermixed_args(sys.argv[1:] if argv is None else argv)  # key=value after the options too
    if args.out is not None and inside_shipped_runs(args.out):
        parser.error(shipped_runs_refusal("--out", args.out))
    if args.tolerance < 0:
        parser.error(f"--tolerance must be >= 0, got {args.tolerance}")
    bad = [item for item in args.overrides if "=" not in item]
    if bad:
        parser.error(f"overrides must look like key=value, got {bad}")
    try:
        ok, report = reproduce(
            args.result, args.out or default_out(), args.data_dir, args.tolerance, args.overrides, args.trust_config
        )
    except ReproduceError as err:
        print(f"lra-reproduce: {err}", file=sys.stderr)
        return 2
    print("\n".join(config_lines(report["config"])))
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
