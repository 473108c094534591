"""Data-layer benchmark (``make bench-data``): first build, warm loading and peak memory of every task.

Each case is a task's data module as the configs build it (``data=<task> profile=<profile>``), on
generated data (ListOps, Pathfinder, Path-X), on the small real-format files the tests build
(``tests/fakes.py``: IMDB archive, AAN TSVs, CIFAR-10 batches, WikiText files), or on real files
where the machine holds them beside the repository (``SHARED``: the IMDB archive at the full LRA
settings, WikiText-2).
A case whose files are absent is skipped, saying why. Every measurement runs in its own process:

- ``cold``: ``prepare_data()`` + ``setup()`` into an empty data folder (generation, reading,
  tokenising, caching): seconds, and the process's peak RSS. For the current code ``datasets``
  is imported just before and timed apart (``datasets_import_s``): a build pays it once per process;
- ``warm``: the same on the built cache (seconds), then the train loader read for whole epochs (at
  least ``--min-epochs`` and ``--min-seconds``): examples per second (median over epochs; for
  WikiText an example is one row of a window), and the process's peak RSS.

Peak RSS is the high-water mark of the process (``VmHWM``) or of a process it waited for (generator
and ``num_proc`` workers), the larger; ``import_rss_mib`` is the RSS once the data module is
built, before any data is read (the libraries' share). Writes
``results/bench/data_<label>_<stamp>.json``. ``--baseline-code DIR`` (a checkout of other code,
e.g. ``git archive`` of an earlier commit) measures that code too, side by side in the same run
(each case: baseline cold, cold, baseline warm, warm; ``--rounds N`` alternates N such rounds and
reports the median round, since single runs on a shared machine swing by +-30 %), so a loaded
machine slows both alike;
``--compare A.json [B.json]`` prints the table of B against A with ratios (one file: its own
baseline against it).

    .venv/bin/python scripts/bench_data.py --label before [--cases listops,text] [--keep DIR]
    .venv/bin/python scripts/bench_data.py --label after --baseline-code /tmp/lra_snn_before
    .venv/bin/python scripts/bench_data.py --label before --code /tmp/lra_snn_before  # other code alone
    .venv/bin/python scripts/bench_data.py --compare results/bench/data_after_X.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"  # real data for tests and CPU runs, where a machine has it
IMDB = SHARED / "imdb" / "aclImdb_v1_posneg.tar.gz"
WIKITEXT2 = SHARED / "wikitext-2"
CHILD_TIMEOUT_S = 1800


def _text_fake(folder: Path) -> list[str]:
    from tests.fakes import fake_reviews, write_imdb_archive

    archive = write_imdb_archive(folder / "aclImdb_v1.tar.gz", fake_reviews(3000, seed=0))
    # the sizes pinned, not the mini profile's (20,000 train reviews, more than the fake archive holds)
    sizes = ["data.n_train=2000", "data.n_val=500", "data.n_test=1000", "data.max_length=512"]
    return [f"data.archives=[{archive}]", *sizes]


def _retrieval_fake(folder: Path) -> list[str]:
    from tests.fakes import write_tsv_folder

    tsvs = write_tsv_folder(folder / "tsv_data", {"train": 800, "val": 200, "test": 200})
    return [f"data.release_dir={tsvs}"]


def _image_fake(folder: Path) -> list[str]:
    from tests.fakes import fake_batches, write_cifar_archive

    archive = write_cifar_archive(folder / "cifar-10-python.tar.gz", fake_batches(n_per_batch=1000))
    return [f"data.archives=[{archive}]"]


def _wikitext_fake(folder: Path) -> list[str]:
    from tests.fakes import write_corpus

    return [f"data.source_dir={write_corpus(folder / 'wikitext')}"]


def _imdb_real(folder: Path) -> list[str]:
    return [f"data.archives=[{IMDB}]"]


def _wikitext2_real(folder: Path) -> list[str]:
    return [
        f"data.source_dir={WIKITEXT2}",
        "data.train_file=valid.txt",
        "data.valid_file=valid.txt",
        "data.test_file=test.txt",
        "data.max_train_tokens=null",
        "data.max_eval_tokens=null",
    ]


# name -> (data=, profile=, what the data is, files it needs (None: none), writer of its source files)
CASES: dict[str, tuple[str, str, str, Path | None, Callable[[Path], list[str]] | None]] = {
    "listops": ("listops", "mini", "generated, 5,000 / 500 / 1,000 expressions", None, None),
    "text": (
        "text",
        "mini",
        "fake IMDB archive (3,000 reviews per class and split), 2,000 / 500 / 1,000",
        None,
        _text_fake,
    ),
    "text-imdb": ("text", "full", "real IMDB archive, 25k / 25k reviews, L = 4,096 bytes", IMDB, _imdb_real),
    "retrieval": ("retrieval", "mini", "fake AAN TSVs, 1,600 / 400 / 400 pairs", None, _retrieval_fake),
    "image": ("image", "mini", "fake CIFAR-10 batches (1,000 images each), 1,500 / 300 / 600", None, _image_fake),
    "pathfinder": ("pathfinder", "mini", "generated, 2,000 images at 32 px", None, None),
    "pathx": ("pathx", "mini", "generated, 40 images at 128 px", None, None),
    "wikitext103": ("wikitext103", "mini", "fake WikiText files (the tests' corpus)", None, _wikitext_fake),
    "wikitext103-wt2": (
        "wikitext103",
        "mini",
        "real WikiText-2 (valid as train), whole streams, 8 x 128 windows",
        WIKITEXT2 / "test.txt",
        _wikitext2_real,
    ),
}


# --------------------------------------------------------------------------- the measured process


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: now, VmHWM: peak since this program started), in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _peak_rss_mib() -> float:
    """Peak RSS of this process (VmHWM, which starts afresh at exec, unlike ru_maxrss, which keeps the
    forking parent's) or of a process it waited for (generator and ``num_proc`` workers), the larger."""
    import resource

    waited = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux reports KiB
    return max(_status_mib("VmHWM"), waited)


def _batch_size(batch: dict[str, Any]) -> tuple[int, int]:
    """(examples, tokens) of a batch: labels for classification, rows and scored tokens for WikiText."""
    if "labels" in batch:
        return len(batch["labels"]), int(batch["lengths"].sum())
    return int(batch["inputs"].shape[0]), int(batch["lengths"].sum())


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement (``spec["mode"]``: cold or warm) in this process; returns its numbers."""
    started = time.perf_counter()
    import lightning as L
    import torch
    from hydra.utils import instantiate

    from lra_snn.config import compose_train

    torch.set_num_threads(1)
    cfg = compose_train(spec["overrides"])
    L.seed_everything(1, verbose=False)
    module = instantiate(cfg.data)
    import lra_snn

    result: dict[str, Any] = {
        "import_s": time.perf_counter() - started,
        "import_rss_mib": _status_mib("VmRSS"),
        "code": str(Path(lra_snn.__file__).parents[1]),
    }
    if spec["mode"] == "cold" and spec.get("preimport_datasets"):
        began = time.perf_counter()
        import datasets  # noqa: F401  # the build imports it once; timed apart from the build's own work

        result["datasets_import_s"] = time.perf_counter() - began
    began = time.perf_counter()
    module.prepare_data()
    module.setup("fit")
    result["prepare_setup_s"] = time.perf_counter() - began
    if spec["mode"] == "warm":
        loader = module.train_dataloader()
        rates, token_rates, epochs_s = [], [], []
        began = time.perf_counter()
        while len(rates) < spec["min_epochs"] or time.perf_counter() - began < spec["min_seconds"]:
            examples = tokens = 0
            epoch_start = time.perf_counter()
            for batch in loader:
                n, t = _batch_size(batch)
                examples += n
                tokens += t
            seconds = time.perf_counter() - epoch_start
            rates.append(examples / seconds)
            token_rates.append(tokens / seconds)
            epochs_s.append(seconds)
            if len(rates) >= spec["max_epochs"]:
                break
        result.update(
            epoch_examples=examples,
            epochs=len(rates),
            epoch_s=epochs_s,
            examples_per_s=statistics.median(rates),
            best_examples_per_s=max(rates),
            tokens_per_s=statistics.median(token_rates),
        )
    result["peak_rss_mib"] = _peak_rss_mib()
    return result


def run_child(spec: dict[str, Any], code: Path = ROOT) -> dict[str, Any]:
    """``child(spec)`` in a fresh Python process importing ``lra_snn`` from ``code`` (its own peak RSS);
    an error is returned, not raised."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{code}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        cwd=code,
        timeout=CHILD_TIMEOUT_S,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": done.stderr[-2000:], "wall_s": wall}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


# --------------------------------------------------------------------------- cases and report


def measure(name: str, work: Path, options: argparse.Namespace) -> dict[str, Any]:
    task, profile, what, needs, write_sources = CASES[name]
    if needs is not None and not needs.exists():
        return {"skipped": f"{needs} is absent (real data only on the project's machines)", "what": what}
    sources = work / name / "sources"
    sources.mkdir(parents=True)
    overrides = [f"data={task}", f"profile={profile}"] + (write_sources(sources) if write_sources else [])
    spec = {"min_epochs": options.min_epochs, "min_seconds": options.min_seconds, "max_epochs": options.max_epochs}
    codes = {"baseline": options.baseline_code} if options.baseline_code else {}
    codes["current"] = options.code
    print(f"== {name}: {what}", flush=True)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {label: {"cold": [], "warm": []} for label in codes}
    for round_index in range(options.rounds):
        for mode in ("cold", "warm"):
            for label, code in codes.items():
                if mode == "warm" and "error" in runs[label]["cold"][-1]:
                    runs[label]["warm"].append({"error": "cold build failed"})
                    continue
                data_dir = (
                    work / name / f"data_{label}_{round_index}"
                )  # a fresh folder per round: every cold run builds
                runs[label][mode].append(
                    run_child(
                        {
                            **spec,
                            "mode": mode,
                            "preimport_datasets": code == ROOT,
                            "overrides": [*overrides, f"paths.data_dir={data_dir}"],
                        },
                        code,
                    )
                )
                print(f"   {mode} ({label}): {_brief(runs[label][mode][-1])}", flush=True)
    results = {
        label: {mode: _median_run(found, mode) for mode, found in modes.items()} for label, modes in runs.items()
    }
    record: dict[str, Any] = {"what": what, "task": task, "profile": profile, **results["current"]}
    if "baseline" in results:
        record["baseline"] = {**results["baseline"], "code": str(options.baseline_code)}
    return record


def _median_run(found: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    """The round with the median first-build time (cold) or warm throughput (warm), with every round's
    result under ``rounds`` when there were several; the first error, if any round failed."""
    failed = [run for run in found if "error" in run]
    if failed:
        return failed[0]
    key = "prepare_setup_s" if mode == "cold" else "examples_per_s"
    median = sorted(found, key=lambda run: run[key])[(len(found) - 1) // 2]
    return {**median, "rounds": found} if len(found) > 1 else median


def _brief(result: dict[str, Any]) -> str:
    if "error" in result:
        return "ERROR " + result["error"].strip().splitlines()[-1]
    rate = f", {result['examples_per_s']:,.0f} examples/s" if "examples_per_s" in result else ""
    return f"{result['prepare_setup_s']:.2f} s{rate}, peak RSS {result['peak_rss_mib']:.0f} MiB"


def _git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() or "unknown"


def _ratio(after: dict[str, Any], before: dict[str, Any], key: str) -> float:
    """``after[key] / before[key]``; with the same number of rounds on both sides, the median of the
    rounds' paired ratios (each round ran both codes back to back)."""
    rounds_a, rounds_b = after.get("rounds"), before.get("rounds")
    if rounds_a and rounds_b and len(rounds_a) == len(rounds_b):
        return statistics.median(x[key] / y[key] for x, y in zip(rounds_a, rounds_b))
    return after[key] / before[key]


def compare(before_path: Path, after_path: Path | None = None) -> str:
    """A markdown table of ``after`` against ``before`` (or, for one file, of it against its own baseline
    measured in the same run): build time, warm setup and throughput, peak RSS, each with its ratio
    (times and throughput: the median round of each side; ratios: the median of paired rounds)."""
    before = json.loads(Path(before_path).read_text())
    after = json.loads(Path(after_path).read_text()) if after_path else before
    lines = [
        f"before: {before_path}" + ("" if after_path else " (its baseline)") + f" ({before['git_commit']}), "
        f"after: {after_path or before_path} ({after['git_commit']})",
        "",
        "| case | first build s (x) | + import datasets s | warm setup s | warm examples/s (x) "
        "| peak RSS build MiB (x) | peak RSS load MiB (x) | import s / RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, a in after["cases"].items():
        b = before["cases"].get(name, {}) if after_path else a.get("baseline", {})
        if "skipped" in a or "skipped" in b or not b:
            lines.append(f"| {name} | skipped: {a.get('skipped') or b.get('skipped') or 'no baseline'} | | | | | | |")
            continue
        if any("error" in r for r in (a["cold"], a["warm"], b["cold"], b["warm"])):
            lines.append(f"| {name} | error | | | | | | |")
            continue
        ac, aw, bc, bw = a["cold"], a["warm"], b["cold"], b["warm"]
        lines.append(
            f"| {name} | {bc['prepare_setup_s']:.2f} -> {ac['prepare_setup_s']:.2f} "
            f"({_ratio(ac, bc, 'prepare_setup_s'):.2f}x) "
            f"| {ac.get('datasets_import_s', 0.0):.2f} "
            f"({(ac['prepare_setup_s'] + ac.get('datasets_import_s', 0.0)) / bc['prepare_setup_s']:.2f}x) "
            f"| {bw['prepare_setup_s']:.3f} -> {aw['prepare_setup_s']:.3f} "
            f"| {bw['examples_per_s']:,.0f} -> {aw['examples_per_s']:,.0f} "
            f"({_ratio(aw, bw, 'examples_per_s'):.2f}x) "
            f"| {bc['peak_rss_mib']:.0f} -> {ac['peak_rss_mib']:.0f} "
            f"({ac['peak_rss_mib'] / bc['peak_rss_mib']:.2f}x) "
            f"| {bw['peak_rss_mib']:.0f} -> {aw['peak_rss_mib']:.0f} "
            f"({aw['peak_rss_mib'] / bw['peak_rss_mib']:.2f}x) "
            f"| {bw['import_s']:.2f} / {bw['import_rss_mib']:.0f} -> "
            f"{aw['import_s']:.2f} / {aw['import_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="run", help="file name label: data_<label>_<stamp>.json")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    parser.add_argument("--min-epochs", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternating rounds per case (each: baseline and current cold, then warm); the median round is reported",
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="build in this folder and keep it (default: a temporary one)"
    )
    parser.add_argument(
        "--code", type=Path, default=ROOT, help="the checkout whose lra_snn/ and conf/ are measured (default: this one)"
    )
    parser.add_argument(
        "--baseline-code",
        type=Path,
        default=None,
        help="a checkout of other code to measure side by side (its lra_snn/ and conf/)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--compare", nargs="+", type=Path, metavar="JSON", help="BEFORE.json [AFTER.json]")
    options = parser.parse_args()
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    if options.child:
        print(json.dumps(child(json.loads(options.child))))
        return
    if options.compare:
        print(compare(*options.compare[:2]))
        return
    sys.path.insert(0, str(ROOT))  # tests.fakes writes the real-format source files
    names = [name for name in options.cases.split(",") if name]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {', '.join(CASES)}")
    work = options.keep or Path(tempfile.mkdtemp(prefix="bench_data_"))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    report = {
        "label": options.label,
        "stamp": stamp,
        "python": sys.version.split()[0],
        "git_commit": _git_commit() if options.code == ROOT else f"code at {options.code}",
        "baseline_code": str(options.baseline_code) if options.baseline_code else None,
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "settings": {"min_epochs": options.min_epochs, "min_seconds": options.min_seconds, "rounds": options.rounds},
        "cases": {},
    }
    try:
        for name in names:
            if (work / name).exists():
                shutil.rmtree(work / name)
            report["cases"][name] = measure(name, work, options)
    finally:
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    options.out.mkdir(parents=True, exist_ok=True)
    path = options.out / f"data_{options.label}_{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
