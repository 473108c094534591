"""The leaderboard rendered: ``leaderboard.md`` (a board per profile, then notes), ``leaderboard.csv`` (a row per cell).

Each profile gets its own board, never mixed: the full profile (the papers' recipes) carries the
published rows beside it; the mini and tiny boards are headed as CPU-scale runs that are not
comparable with published numbers, and carry none. A board is its results table (rows best first,
``lra_snn.results.board.Row.sort_key``), its firing-rate/energy table (one energy unit, named in
its heading), for models with surrogate neurons their agreement with the exact neuron and their test
metric with it swapped in, its provenance table (seeds, data source, cell hash, code version, commits) and, when
the board is built with shipped reference runs, its reproduction table (``lra_snn.results.reproduction``).
A cell reads "mean +- std (seeds) [data source]", with "failed (n)" / "interrupted (n)" beside it
for runs that failed or were stopped (never instead of completed seeds), or "no data: make
data-<task>" when no run had its data; every failure, interruption, missing data set and skipped
file gets a note. Nothing here depends on the clock, so the same runs give the same bytes.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

from lra_snn.config.tasks import ACCURACY, PERPLEXITY, TASK_TABLE, TASKS, Average
from lra_snn.results.atomic import write_atomically
from lra_snn.results.averages import averages_prose, list_in_words, published_averages_prose, two_decimals
from lra_snn.results.board import (
    Group,
    Row,
    build_rows,
    group_cells,
    majority_rates,
    mean_and_std,
    mean_or_none,
)
from lra_snn.results.manifest import counted_runs
from lra_snn.results.reference import (
    PUBLISHED_FILE,
    PublishedRow,
    Reference,
    ReferenceFileError,
    average_over,
    load_reference,
    recomputed_average,
)
from lra_snn.results.reproduction import ABS_TOLERANCE, SIGMAS, Comparison, compare, seeds_text
from lra_snn.results.runs import PROFILES, Run, short_commit

ACCURACY_TASKS = TASK_TABLE.ranked_by(ACCURACY)  # the columns before the averages
PERPLEXITY_TASKS = TASK_TABLE.ranked_by(PERPLEXITY)  # the columns after them
PAPER_AVERAGE_TITLE = "Paper's avg"
MAX_MESSAGE_CHARS = 300
# energy per example: the unit of a table is the largest in which its largest value is >= 1
ENERGY_UNITS = (("mJ", 1.0), ("uJ", 1e3), ("nJ", 1e6))
PROFILE_HEADINGS = {
    "full": "Full-profile runs: the papers' recipes, comparable with the published rows below.",
    "mini": "**CPU-scale runs** (reduced data, models and training): not comparable with published "
    "numbers, which are therefore not shown beside them.",
    "tiny": "**CPU-scale smoke runs** (a few steps on tiny data): not comparable with published "
    "numbers, which are therefore not shown beside them.",
}
CSV_COLUMNS = (
    "profile",
    "model",
    "variant",
    "code_version",
    "task",
    "metric",
    "status",
    "mean",
    "std",
    "n_seeds",
    "seeds",
    "n_failed",
    "n_interrupted",
    "data_source",
    "majority_rate_pct",
    "firing_rate_pct",
    "energy_mj",
    "surrogate_agreement_pct",
    "exact_neuron_mean",
    "n_params",
    "wall_time_s",
    "config_hash",
    "git_commits",
    "shipped_mean",
    "shipped_std",
    "shipped_n_seeds",
    "shipped_code_version",
    "identical_seeds",
    "delta_shipped_std",
    "verdict",
)


# --------------------------------------------------------------------------- cells


def format_measure(values: list[float]) -> str:
    """``59.20 +- 0.31 (3)``; one seed shows no spread: ``59.20 (1)``."""
    mean, std = mean_and_std(values)
    spread = f" +- {std:.2f}" if std is not None else ""
    return f"{mean:.2f}{spread} ({len(values)})"


def cell_text(group: Group | None, task: str) -> str:
    """What one table cell says for a cell: its results and data source, its failures, or that its data is missing."""
    if group is None:
        return "not run"
    parts = []
    if group.values:
        source = f" [{group.data_source}]" if group.data_source else ""
        parts.append(format_measure(group.values) + source)
    for status in ("failed", "interrupted"):
        count = len(group.shown_with_status(status))
        if count:
            parts.append(f"{status} ({count})")
    return ", ".join(parts) if parts else f"no data: make data-{task}"


def average_text(row: Row, task_set: Average) -> str:
    """The row's average over a complete task set, else how many of the averaged tasks it has ("-" for none)."""
    average = row.average(task_set)
    if average is not None:
        return two_decimals(average)
    count = row.n_averaged_tasks()
    return f"{count}/{len(TASK_TABLE.averaged)} tasks" if count else "-"


# --------------------------------------------------------------------------- markdown


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(row) for row in rows)])


def one_line(text: str) -> str:
    """Whitespace collapsed; a long message keeps its end (where a traceback names the error)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_MESSAGE_CHARS else "..." + flat[-(MAX_MESSAGE_CHARS - 3) :]


def _header(*extra: str) -> list[str]:
    """Model, the accuracy tasks, the averages (then ``extra`` columns), the perplexity tasks."""
    averages = [task_set.title for task_set in TASK_TABLE.averages]
    titles = TASK_TABLE.column_title
    return ["Model", *map(titles, ACCURACY_TASKS), *averages, *extra, *map(titles, PERPLEXITY_TASKS)]


def _results_row(row: Row) -> list[str]:
    return [
        row.label,
        *(cell_text(row.cells.get(task), task) for task in ACCURACY_TASKS),
        *(average_text(row, task_set) for task_set in TASK_TABLE.averages),
        *(cell_text(row.cells.get(task), task) for task in PERPLEXITY_TASKS),
    ]


def _majority_row(profile: str, groups: list[Group]) -> tuple[list[str], list[str]]:
    """The table's last row (majority-class rate of each test split) and notes on disagreements."""
    cells, notes = [], []
    for task in ACCURACY_TASKS:
        rates = majority_rates(groups, task)
        if not rates:
            cells.append("-")
        elif len(rates) == 1:
            cells.append(f"{rates[0]:.2f}")
        else:
            cells.append(f"{rates[0]:.2f}-{rates[-1]:.2f}")
            notes.append(
                f"{profile}/{task}: runs report different test majority-class rates "
                f"({', '.join(f'{r:.2f}' for r in rates)}); their test splits differ"
            )
    blank = ["-" for _ in (*TASK_TABLE.averages, *PERPLEXITY_TASKS)]
    return ["*majority class (test)*", *cells, *blank], notes


def energy_unit(millijoules: list[float]) -> tuple[str, float]:
    """(unit, factor from mJ) of a table: the largest unit in which its largest value is at least 1."""
    largest = max(millijoules, default=1.0)
    for unit, factor in ENERGY_UNITS:
        if largest * factor >= 1:
            return unit, factor
    return ENERGY_UNITS[-1]


def _activity(group: Group | None) -> tuple[float | None, float | None]:
    completed = group.with_status("completed") if group else []
    return mean_or_none([run.firing_rate for run in completed]), mean_or_none([run.energy_mj for run in completed])


def _activity_table(profile: str, rows: list[Row]) -> str | None:
    """Firing rate and estimated energy per cell in one energy unit, or None when no run of the profile reports them."""
    measured = {(row.label, task): _activity(row.cells.get(task)) for row in rows for task in TASKS}
    unit, factor = energy_unit([energy for _, energy in measured.values() if energy is not None])

    def text(firing: float | None, energy: float | None) -> str:
        if firing is None and energy is None:
            return "-"
        firing_text = f"{firing:.2f} %" if firing is not None else "-"
        return f"{firing_text} / {energy * factor:.3g}" if energy is not None else f"{firing_text} / -"

    table = [[row.label, *(text(*measured[(row.label, task)]) for task in TASKS)] for row in rows]
    table = [line for line in table if any(cell != "-" for cell in line[1:])]
    if not table:
        return None
    heading = f"### Firing rate (%) / estimated energy per example ({unit}), {profile}"
    titles = [TASK_TABLE.rows[task].title for task in TASKS]
    return heading + "\n\n" + markdown_table(["Model", *titles], table)


def _surrogate_table(profile: str, rows: list[Row]) -> str | None:
    """For each cell whose model approximates an exact neuron: how often its spikes equal the exact neuron's
    on the test set, and the test metric with the trained surrogate and again with the exact neuron swapped in
    (same weights). None when no run of the profile has such a neuron."""
    lines = []
    for row in rows:
        for task in TASKS:
            group = row.cells.get(task)
            measured = (
                [run for run in group.with_status("completed") if run.surrogate_agreement is not None] if group else []
            )
            if not measured:
                continue
            exact = [run.exact_neuron_metric for run in measured if run.exact_neuron_metric is not None]
            lines.append(
                [
                    row.label,
                    TASK_TABLE.column_title(task),
                    format_measure(
                        [run.surrogate_agreement for run in measured if run.surrogate_agreement is not None]
                    ),
                    format_measure([run.metric for run in measured if run.metric is not None]),
                    format_measure(exact) if exact else "-",
                ]
            )
    if not lines:
        return None
    header = ["Model", "Task", "Spikes equal to the exact neuron's (%)", "Test, as trained", "Test, exact neuron"]
    return f"### Surrogate neurons against their exact neuron ({profile})\n\n" + markdown_table(header, lines)


def _provenance_table(rows: list[Row]) -> str:
    lines = []
    for row in rows:
        for task in TASKS:
            group = row.cells.get(task)
            if group is None:
                continue
            commits = sorted({short_commit(run.git_commit) for run in group.runs})
            seeds = ", ".join(str(run.seed) for run in group.runs)
            hashes = ", ".join(sorted({run.config_hash for run in group.runs}))
            source = group.data_source or "not recorded"
            title = TASK_TABLE.column_title(task)
            lines.append([row.label, title, seeds, source, hashes, group.code_version, ", ".join(commits)])
    return markdown_table(["Model", "Task", "Seeds", "Data source", "Cell hash", "Code version", "Commit(s)"], lines)


def _delta_text(comparison: Comparison) -> str:
    if comparison.shipped is None:
        return "-"
    return f"{comparison.delta_std:+.2f}" if comparison.delta_std is not None else comparison.delta_note or "-"


def _reproduction_table(rows: list[Row], comparisons: dict[tuple[str, str], Comparison]) -> str:
    lines = []
    for row in rows:
        for task in TASKS:
            comparison = comparisons.get((row.label, task))
            if comparison is None:
                continue
            group = row.cells[task]
            shipped = format_measure(comparison.shipped.values) if comparison.shipped is not None else "-"
            versions = "-" if comparison.shipped is None else _versions_text(group, comparison.shipped)
            lines.append(
                [
                    row.label,
                    TASK_TABLE.column_title(task),
                    format_measure(group.values),
                    shipped,
                    seeds_text(comparison),
                    _delta_text(comparison),
                    comparison.verdict,
                    versions,
                ]
            )
    header = ["Model", "Task", "Yours", "Shipped", "Seed by seed", "Difference (shipped std)", "Verdict"]
    return markdown_table([*header, "Code versions (yours / shipped)"], lines)


def _versions_text(group: Group, shipped: Group) -> str:
    """``yours / shipped`` code versions, or ``<version> (both)`` when they are the same."""
    if group.code_version == shipped.code_version:
        return f"{group.code_version} (both)"
    return f"{group.code_version} / {shipped.code_version}"


def render_profile(
    profile: str, groups: list[Group], shipped: list[Group] | None
) -> tuple[str, list[str], dict[tuple[str, str], Comparison], list[Row]]:
    """One profile's board (results, activity, provenance, reproduction), its notes, comparisons and rows."""
    rows = build_rows(groups)
    majority_row, notes = _majority_row(profile, groups)
    header = _header()
    parts = [
        f"## Profile: {profile}",
        PROFILE_HEADINGS[profile],
        markdown_table(header, [*(_results_row(row) for row in rows), majority_row]),
    ]
    activity = _activity_table(profile, rows)
    if activity:
        parts.append(activity)
    surrogate = _surrogate_table(profile, rows)
    if surrogate:
        parts.append(surrogate)
    parts += [f"### Provenance and data source ({profile})", _provenance_table(rows)]
    comparisons: dict[tuple[str, str], Comparison] = {}
    if shipped is not None:
        for row in rows:
            for task, group in row.cells.items():
                if group.values:
                    comparisons[(row.label, task)] = compare(group, shipped)
        parts += [f"### Reproduction of the shipped runs ({profile})", _reproduction_table(rows, comparisons)]
    return "\n\n".join(parts), notes, comparisons, rows


def _beside_note(label: str, group: Group, run: Run) -> str:
    """Why a run is shown beside the counted ones: a later attempt of a counted seed."""
    what = f"{label} seed {run.seed}: a later attempt {run.status}, the completed result still counts"
    return f"{what}: {one_line(run.message)} (`{run.path}`)"


def _cell_label(group: Group) -> str:
    variant = f" [{group.variant}]" if group.variant else ""
    return f"{group.profile}/{group.model}{variant}/{group.task}"


def run_notes(groups: list[Group]) -> list[str]:
    """One note per failed or interrupted run (message and file), per run beside, and per cell without data."""
    notes = []
    for group in groups:
        label = _cell_label(group)
        for status in ("failed", "interrupted"):
            for run in group.with_status(status):
                notes.append(f"{label} seed {run.seed} {status}: {one_line(run.message)} (`{run.path}`)")
        notes.extend(_beside_note(label, group, run) for run in group.beside)
        for run in group.with_status("no_data"):
            notes.append(f"{label}: {one_line(run.message)} (`{run.path}`)")
    return notes


# --------------------------------------------------------------------------- published rows


def _published_cell(value: float | str) -> str:
    return f"{value:.2f}" if isinstance(value, float) else value


def _source_line(row: PublishedRow) -> str:
    if not row.sources:
        return f"**{row.model}**: {row.paper.cite()}. {row.note or ''}".rstrip()
    cited = []
    for source in row.sources:
        keys = ", ".join(TASK_TABLE.column_title(key) if key in TASKS else PAPER_AVERAGE_TITLE for key in source.covers)
        prefix = "" if len(row.sources) == 1 else f"{keys} from "
        cited.append(f"{prefix}{source.paper.cite()}, {source.table}")
    note = f" {row.note}" if row.note else ""
    return f"**{row.model}**: " + "; ".join(cited) + "." + note


def _recomputed_text(row: PublishedRow, task_set: Average) -> str:
    value, chance = recomputed_average(row, task_set)
    return "-" if value is None else two_decimals(value) + ("*" if chance else "")


def _paper_average_text(row: PublishedRow) -> str:
    """The paper's own average, or "same" when our recomputation over its task set gives it at two decimals."""
    if row.avg == "-" or row.avg_tasks is None:
        return "-"
    task_set = average_over(row.avg_tasks)
    value = recomputed_average(row, task_set)[0] if task_set is not None else None
    if value is not None and two_decimals(value) == two_decimals(float(row.avg)):
        return "same"
    return f"{row.avg:.2f} ({row.avg_tasks} tasks)"


def render_published(reference: Reference) -> str:
    """The published table (averages recomputed), its notes, one source line per row and the other figures."""
    rows = [
        [
            row.model,
            *(_published_cell(row.results[t]) for t in ACCURACY_TASKS),
            *(_recomputed_text(row, task_set) for task_set in TASK_TABLE.averages),
            _paper_average_text(row),
            *(_published_cell(row.results[t]) for t in PERPLEXITY_TASKS),
        ]
        for row in reference.rows
    ]
    conventions = (
        f"Averages recomputed here from the per-task numbers: {published_averages_prose()}. "
        "Paper's avg: the paper's own figure, when it is not the same as ours over its task set."
    )
    parts = [
        "### Published (from the papers, not run here)",
        conventions,
        markdown_table(_header(PAPER_AVERAGE_TITLE), rows),
        "\n".join(f"- {note}" for note in reference.notes),
        "Sources:\n\n" + "\n".join(f"- {_source_line(row)}" for row in reference.rows),
    ]
    if reference.other_figures:
        figures = "\n".join(
            f"- {text} ({source.paper.cite()}, {source.table})." for text, source in reference.other_figures
        )
        parts.append("Other published figures:\n\n" + figures)
    return "\n\n".join(part for part in parts if part)


def _published_section(reference_path: Path) -> str:
    try:
        return render_published(load_reference(reference_path))
    except ReferenceFileError as err:
        return f"### Published\n\nPublished numbers could not be read: {err}"


# --------------------------------------------------------------------------- CSV


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _significant(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else float(f"{value:.{digits}g}")


def csv_row(group: Group, comparison: Comparison | None = None) -> dict:
    """One CSV row: everything needed to cite and reproduce a cell, and its comparison with the shipped one."""
    values = group.values
    mean, std = mean_and_std(values) if values else (None, None)
    completed = group.with_status("completed")
    statuses = [status for status in ("failed", "interrupted") if group.with_status(status)]
    status = "completed" if values else (statuses[0] if statuses else "no_data")
    n_params = sorted({run.n_params for run in group.runs if run.n_params is not None})
    shipped = comparison.shipped if comparison is not None else None
    shipped_mean, shipped_std = mean_and_std(shipped.values) if shipped is not None else (None, None)
    return {
        "profile": group.profile,
        "model": group.model,
        "variant": group.variant,
        "code_version": group.code_version,
        "task": group.task,
        "metric": "test/ppl" if TASK_TABLE.rows[group.task].metric == PERPLEXITY else "test/acc (%)",
        "status": status,
        "mean": _rounded(mean),
        "std": _rounded(std),
        "n_seeds": len(values),
        "seeds": ";".join(str(run.seed) for run in completed),
        "n_failed": len(group.shown_with_status("failed")),
        "n_interrupted": len(group.shown_with_status("interrupted")),
        "data_source": group.data_source,
        "majority_rate_pct": _rounded(mean_or_none([run.majority_rate for run in completed])),
        "firing_rate_pct": _rounded(mean_or_none([run.firing_rate for run in completed])),
        "energy_mj": _significant(mean_or_none([run.energy_mj for run in completed])),
        "surrogate_agreement_pct": _rounded(mean_or_none([run.surrogate_agreement for run in completed])),
        "exact_neuron_mean": _rounded(mean_or_none([run.exact_neuron_metric for run in completed])),
        "n_params": ";".join(str(n) for n in n_params),
        "wall_time_s": _rounded(mean_or_none([run.wall_time_s for run in completed]), 1),
        "config_hash": ";".join(sorted({run.config_hash for run in group.runs})),
        "git_commits": ";".join(sorted({run.git_commit for run in group.runs})),
        "shipped_mean": _rounded(shipped_mean),
        "shipped_std": _rounded(shipped_std),
        "shipped_n_seeds": len(shipped.values) if shipped is not None else None,
        "shipped_code_version": shipped.code_version if shipped is not None else None,
        "identical_seeds": ";".join(str(p.seed) for p in comparison.pairs if p.identical) if comparison else None,
        "delta_shipped_std": _rounded(comparison.delta_std) if comparison is not None else None,
        "verdict": comparison.verdict if comparison is not None else None,
    }


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: ("" if value is None else value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


# --------------------------------------------------------------------------- assembly


def _introduction(results_dir: Path, n_runs: int, n_skipped: int, profile: str | None, shipped: Path | None) -> str:
    built = (
        f"Built from {n_runs} usable result file(s) under `{results_dir}`"
        + (f" (profile {profile} only)" if profile else "")
        + (f"; {n_skipped} more skipped (see Notes)" if n_skipped else "")
        + "."
    )
    perplexities = list_in_words([TASK_TABLE.rows[task].title for task in PERPLEXITY_TASKS])
    ranking = ", then ".join(task_set.title for task_set in sorted(TASK_TABLE.averages, key=lambda a: -len(a.tasks)))
    conventions = (
        "Convention: a cell is the test accuracy (%) at the best-validation checkpoint written "
        "`mean +- std (N)`, the mean and sample standard deviation (ddof = 1) over N seeds (one seed: "
        f"no std), followed by the data the runs used in brackets; {perplexities} is test perplexity "
        "(lower is better). Seeds are pooled only when they share a config and a code version (a hash "
        "of the package source and configs; `git <commit>` for records written before code versions). "
        f"{averages_prose()}; a row missing a task of a set shows `k/{len(TASK_TABLE.averaged)} tasks` "
        f"instead. Rows are ranked by {ranking}, then task by task in column order. `model [label]` is a "
        "variant: the settings in which its cell differs from the model's default cell (the config with "
        "the most seeds), and the code version when runs of one cell come from several."
    )
    parts = [built, conventions]
    if shipped is not None:
        parts.append(
            f"Reproduction: each cell is compared with the shipped runs under `{shipped}` of the same "
            "profile, model, task and settings, at whatever code versions (both are named). Seeds both ran "
            "are compared seed with seed (identical: the same value, bit for bit), else the means: "
            "reproduced exactly when every seed of yours equals the shipped one, reproduced when the "
            f"difference is at most max({SIGMAS:g} shipped std, {ABS_TOLERANCE:g}) in the metric's unit (one "
            "shipped seed or a shipped std of 0: the absolute tolerance alone), differs otherwise."
        )
    return "\n\n".join(parts)


def build_leaderboard(
    results_dir: str | Path,
    reference_path: str | Path = PUBLISHED_FILE,
    profile: str | None = None,
    reference_runs: str | Path | None = None,
) -> tuple[str, list[dict]]:
    """The leaderboard markdown and its CSV rows, from the result files under ``results_dir``.

    ``profile`` keeps only that profile's runs. ``reference_runs``, a folder of shipped runs, adds a
    reproduction table per profile and the shipped columns of the CSV. A missing or invalid
    reference file is reported in place of the published rows; the boards of our runs still build.
    """
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    results_dir = Path(results_dir)
    runs, notes = counted_runs(results_dir)
    n_skipped = len(notes)
    if profile is not None:
        runs = [run for run in runs if run.profile == profile]
    cells, selection_notes = group_cells(runs)
    notes.extend(selection_notes)
    shipped: list[Group] | None = None
    shipped_dir = Path(reference_runs) if reference_runs is not None else None
    if shipped_dir is not None:
        shipped_runs, shipped_problems = counted_runs(shipped_dir)
        shipped = group_cells(shipped_runs)[0]
        notes.extend(f"shipped runs: {problem}" for problem in shipped_problems)
    by_profile: dict[str, list[Group]] = defaultdict(list)
    for cell in cells:
        by_profile[cell.profile].append(cell)

    parts = ["# Leaderboard", _introduction(results_dir, len(runs), n_skipped, profile, shipped_dir)]
    if not by_profile:
        parts.append(f"**No results yet under `{results_dir}`.**")
    csv_rows: list[dict] = []
    shown = [name for name in PROFILES if name in by_profile or (name == "full" and profile in (None, "full"))]
    for name in shown:
        if name in by_profile:
            section, profile_notes, comparisons, rows = render_profile(name, by_profile[name], shipped)
            notes.extend(profile_notes)
            for row in rows:
                for task in TASKS:
                    if task in row.cells:
                        csv_rows.append(csv_row(row.cells[task], comparisons.get((row.label, task))))
        else:
            section = f"## Profile: full\n\n{PROFILE_HEADINGS['full']}\n\nNo full-profile runs under `{results_dir}`."
        if name == "full":
            section += "\n\n" + _published_section(Path(reference_path))
        parts.append(section)
    notes.extend(run_notes(cells))
    parts.append("## Notes\n\n" + ("\n".join(f"- {note}" for note in notes) if notes else "None."))
    return "\n\n".join(parts) + "\n", csv_rows


def write_leaderboard(markdown: str, rows: list[dict], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``leaderboard.md`` and ``leaderboard.csv`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    md_path, csv_path = out_dir / "leaderboard.md", out_dir / "leaderboard.csv"
    write_atomically(md_path, markdown)
    write_atomically(csv_path, csv_text(rows))
    return md_path, csv_path
