"""Record a part of the package's mutation run (``make mutate PART=<part>``) under ``results/mutation/``.

The package is mutated in parts, one per subpackage of ``lra_snn`` (and ``top`` for its top-level
modules), since one run over everything takes longer than a working session. After ``mutmut run`` over
a part's mutants, this reads ``mutmut results --all true`` and writes ``results/mutation/<part>.json``:
the code version, each module's counts by status, and every mutant that was not killed with the reason
it is harmless where ``results/mutation/explained.yaml`` gives one (a mutant that computes the same
results, keyed by its mutmut name). ``results/mutation/README.md`` is then redrawn from every recorded
part: the kill rate per part and overall, and the survivors nobody has explained yet.

    python scripts/mutation_report.py --parts            # the parts, one per line
    python scripts/mutation_report.py --glob results     # the part's mutant name patterns, for mutmut run
    python scripts/mutation_report.py --part results     # record the part after mutmut ran it
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lra_snn"
OUT = ROOT / "results" / "mutation"
EXPLAINED = OUT / "explained.yaml"
# statuses that count as caught: a failing test, a test run that never ends, the type checker
CAUGHT = ("killed", "timeout", "caught by type check")
_RESULT_LINE = re.compile(r"^\s+(?P<name>\S+): (?P<status>.+)$")
_MODULE_OF = re.compile(r"^(?P<module>.+?)\.x(?:_|ǁ)")


def parts() -> list[str]:
    """One part per subpackage of lra_snn, and "top" for its top-level modules."""
    return ["top", *sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())]


def mutant_globs(part: str) -> list[str]:
    """The mutmut name patterns of a part's mutants."""
    if part == "top":
        return [f"lra_snn.{p.stem}.*" for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__init__"]
    return [f"lra_snn.{part}.*"]


def module_of(name: str) -> str:
    """The dotted module of a mutmut mutant name (``lra_snn.results.runs.x_run_of__mutmut_3``)."""
    match = _MODULE_OF.match(name)
    if match is None:
        raise ValueError(f"not a mutmut mutant name: {name!r}")
    return match["module"]


def in_part(module: str, part: str) -> bool:
    if part == "top":
        return module.count(".") == 1
    return module == f"lra_snn.{part}" or module.startswith(f"lra_snn.{part}.")


def read_results(text: str) -> dict[str, str]:
    """Mutant name -> status from the output of ``mutmut results --all true``."""
    found = {}
    for line in text.splitlines():
        match = _RESULT_LINE.match(line)
        if match:
            found[match["name"]] = match["status"]
    return found


def code_version() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def part_record(part: str, statuses: dict[str, str], explained: dict[str, str], commit: str) -> dict:
    """A part's counts per module and status, and its mutants that were not caught with their explanation."""
    mine = {name: status for name, status in statuses.items() if in_part(module_of(name), part)}
    if not mine:
        raise SystemExit(f"no mutmut results for part {part!r}: run `make mutate PART={part}` first")
    per_module: dict[str, Counter] = defaultdict(Counter)
    for name, status in mine.items():
        per_module[module_of(name)][status] += 1
    survivors = [
        {"name": name, "status": status, "explanation": explained.get(name)}
        for name, status in sorted(mine.items())
        if status not in CAUGHT
    ]
    caught = sum(1 for status in mine.values() if status in CAUGHT)
    return {
        "part": part,
        "commit": commit,
        "mutants": len(mine),
        "caught": caught,
        "kill_rate": caught / len(mine),
        "modules": {module: dict(counts) for module, counts in sorted(per_module.items())},
        "survivors": survivors,
    }


def summary_markdown(records: list[dict]) -> str:
    """The README of results/mutation: each part's score, the overall score, unexplained survivors."""
    total = sum(r["mutants"] for r in records)
    caught = sum(r["caught"] for r in records)
    explained = sum(1 for r in records for s in r["survivors"] if s["explanation"])
    lines = [
        "# Mutation testing, part by part",
        "",
        "Written by `scripts/mutation_report.py` after `make mutate PART=<part>`; a mutant is caught when a test",
        "fails on it (killed), never finishes (timeout) or the type checker refuses it. Every other mutant is",
        "listed in its part's JSON with the reason it computes the same results (`explained.yaml`) or as",
        "unexplained.",
        "",
        "| part | commit | mutants | caught | kill rate | survivors explained |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in records:
        n_explained = sum(1 for s in r["survivors"] if s["explanation"])
        lines.append(
            f"| {r['part']} | {r['commit'][:10]} | {r['mutants']} | {r['caught']} | {100 * r['kill_rate']:.1f} % | "
            f"{n_explained} of {len(r['survivors'])} |"
        )
    missing = [p for p in parts() if p not in {r["part"] for r in records}]
    lines += [
        "",
        f"Recorded parts: {total} mutants, {caught} caught ({100 * caught / max(total, 1):.1f} %), "
        f"{explained} of {total - caught} survivors explained.",
        f"Parts not run yet: {', '.join(missing) if missing else 'none'}.",
    ]
    unexplained = [(r["part"], s) for r in records for s in r["survivors"] if not s["explanation"]]
    if unexplained:
        lines += ["", "Survivors not explained yet:", ""]
        lines += [f"- `{s['name']}` ({part}, {s['status']})" for part, s in unexplained]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/mutation_report.py", description=__doc__.split("\n\n")[0])
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--parts", action="store_true", help="list the parts")
    group.add_argument("--glob", metavar="PART", help="print the mutmut name patterns of a part, quoted for a shell")
    group.add_argument("--part", help="record this part from `mutmut results --all true`")
    p.add_argument("--results-file", type=Path, help="read mutmut's results from this file instead of running it")
    args = p.parse_args(argv)
    if args.parts:
        print("\n".join(parts()))
        return 0
    part = args.glob or args.part
    if part not in parts():
        p.error(f"unknown part {part!r}; the parts: {', '.join(parts())}")
    if args.glob:
        print(" ".join(f"'{pattern}'" for pattern in mutant_globs(part)))
        return 0
    if args.results_file is not None:
        text = args.results_file.read_text(encoding="utf-8")
    else:
        mutmut = Path(sys.executable).with_name("mutmut")
        text = subprocess.run(
            [str(mutmut), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True
        ).stdout
    explained = yaml.safe_load(EXPLAINED.read_text(encoding="utf-8")) if EXPLAINED.exists() else {}
    record = part_record(part, read_results(text), explained or {}, code_version())
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{part}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    records = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(OUT.glob("*.json"))]
    (OUT / "README.md").write_text(summary_markdown(records), encoding="utf-8")
    print(
        f"{part}: {record['caught']} of {record['mutants']} caught ({100 * record['kill_rate']:.1f} %), "
        f"{len(record['survivors'])} not caught -> {OUT / (part + '.json')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
