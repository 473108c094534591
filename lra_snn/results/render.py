"""The leaderboard rendered: ``leaderboard.md`` (tables and notes) and ``leaderboard.csv`` (one row per cell).

The markdown has one table per profile (full, mini, tiny), never mixed, each followed by its
firing-rate/energy and provenance tables, then the published rows with their citations, then the
notes. A cell reads "mean +- std (seeds)", with "failed (n)" / "interrupted (n)" beside it for
runs that failed or were stopped (never instead of completed seeds), or "no data: make data-<task>"
when no run had its data; every failure, interruption, missing data set, skipped file and
superseded run gets a note.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

from lra_snn.results.atomic import write_atomically
from lra_snn.results.board import (
    Group,
    group_runs,
    lra_average,
    majority_rates,
    mean_and_std,
    mean_or_none,
)
from lra_snn.results.reference import (
    PublishedRow,
    Reference,
    ReferenceFileError,
    load_reference,
)
from lra_snn.results.runs import LM_TASK, LRA_TASKS, PROFILES, TASKS, Run, load_runs

TASK_TITLES = {
    "listops": "ListOps",
    "text": "Text",
    "retrieval": "Retrieval",
    "image": "Image",
    "pathfinder": "Pathfinder",
    "pathx": "Path-X",
    "wikitext103": "WikiText-103 (ppl)",
}
AVERAGE_TITLE = "LRA avg"
MAX_MESSAGE_CHARS = 300
CSV_COLUMNS = (
    "profile",
    "model",
    "task",
    "metric",
    "status",
    "mean",
    "std",
    "n_seeds",
    "seeds",
    "n_failed",
    "n_interrupted",
    "majority_rate_pct",
    "firing_rate_pct",
    "energy_mj",
    "n_params",
    "wall_time_s",
    "config_hash",
    "git_commits",
    "n_superseded",
)


# --------------------------------------------------------------------------- cells


def short_commit(commit: str) -> str:
    """The first 12 hex digits of a commit, keeping a "+dirty" mark (uncommitted changes at run time)."""
    sha, dirty, _ = commit.partition("+dirty")
    return sha[:12] + ("+dirty" if dirty else "")


def format_measure(values: list[float]) -> str:
    """``59.20 +- 0.31 (3)``; one seed shows no spread: ``59.20 (1)``."""
    mean, std = mean_and_std(values)
    spread = f" +- {std:.2f}" if std is not None else ""
    return f"{mean:.2f}{spread} ({len(values)})"


def cell_text(group: Group | None, task: str) -> str:
    """What one table cell says for a group: its results, its failures, or that its data is missing."""
    if group is None:
        return "not run"
    parts = []
    if group.values:
        parts.append(format_measure(group.values))
    for status in ("failed", "interrupted"):
        count = len(group.shown_with_status(status))
        if count:
            parts.append(f"{status} ({count})")
    return ", ".join(parts) if parts else f"no data: make data-{task}"


def format_average(average: tuple[float, int] | None) -> str:
    if average is None:
        return "-"
    value, n_tasks = average
    return f"{value:.2f} ({n_tasks} task{'s' if n_tasks != 1 else ''})"


# --------------------------------------------------------------------------- markdown


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(row) for row in rows)])


def one_line(text: str) -> str:
    """Whitespace collapsed; a long message keeps its end (where a traceback names the error)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_MESSAGE_CHARS else "..." + flat[-(MAX_MESSAGE_CHARS - 3) :]


def _header() -> list[str]:
    return ["Model", *(TASK_TITLES[t] for t in LRA_TASKS), AVERAGE_TITLE, TASK_TITLES[LM_TASK]]


def _results_row(model: str, by_task: dict[str, Group]) -> list[str]:
    return [
        model,
        *(cell_text(by_task.get(task), task) for task in LRA_TASKS),
        format_average(lra_average(by_task)),
        cell_text(by_task.get(LM_TASK), LM_TASK),
    ]


def _majority_row(groups: list[Group]) -> tuple[list[str], list[str]]:
    """The table's last row (majority-class rate of each test split) and notes on disagreements."""
    cells, notes = [], []
    for task in LRA_TASKS:
        rates = majority_rates(groups, task)
        if not rates:
            cells.append("-")
        elif len(rates) == 1:
            cells.append(f"{rates[0]:.2f}")
        else:
            cells.append(f"{rates[0]:.2f}-{rates[-1]:.2f}")
            notes.append(
                f"{groups[0].profile}/{task}: runs report different test majority-class rates "
                f"({', '.join(f'{r:.2f}' for r in rates)}); their test splits differ"
            )
    return ["*majority class (test)*", *cells, "-", "-"], notes


def format_energy(millijoules: float) -> str:
    """Energy per example with 3 significant digits, in mJ, or in uJ below 1 mJ."""
    return f"{millijoules:.3g} mJ" if millijoules >= 1 else f"{millijoules * 1000:.3g} uJ"


def _activity_cell(group: Group | None) -> str:
    completed = group.with_status("completed") if group else []
    firing = mean_or_none([run.firing_rate for run in completed])
    energy = mean_or_none([run.energy_mj for run in completed])
    if firing is None and energy is None:
        return "-"
    firing_text = f"{firing:.2f} %" if firing is not None else "-"
    energy_text = format_energy(energy) if energy is not None else "-"
    return f"{firing_text} / {energy_text}"


def _activity_table(models: dict[str, dict[str, Group]]) -> str | None:
    """Firing rate and estimated energy per cell, or None when no run of the profile reports them."""
    rows = [[model, *(_activity_cell(by_task.get(task)) for task in TASKS)] for model, by_task in models.items()]
    rows = [row for row in rows if any(cell != "-" for cell in row[1:])]
    if not rows:
        return None
    return markdown_table(["Model", *(TASK_TITLES[t] for t in LRA_TASKS), "WikiText-103"], rows)


def _provenance_table(groups: list[Group]) -> str:
    rows = []
    for group in groups:
        commits = sorted({short_commit(run.git_commit) for run in group.runs})
        seeds = ", ".join(str(run.seed) for run in group.runs)
        rows.append([group.model, TASK_TITLES[group.task], seeds, group.config_hash, ", ".join(commits)])
    return markdown_table(["Model", "Task", "Seeds", "Config hash", "Commit(s)"], rows)


def render_profile(profile: str, groups: list[Group]) -> tuple[str, list[str]]:
    """One profile's section (results, activity, provenance) and its notes."""
    groups = sorted(groups, key=lambda g: (g.model, TASKS.index(g.task)))
    models: dict[str, dict[str, Group]] = defaultdict(dict)
    for group in groups:
        models[group.model][group.task] = group
    rows = [_results_row(model, by_task) for model, by_task in models.items()]
    majority_row, notes = _majority_row(groups)
    parts = [f"## Profile: {profile}", markdown_table(_header(), [*rows, majority_row])]
    activity = _activity_table(models)
    if activity:
        parts += [f"### Firing rate and estimated energy ({profile})", activity]
    parts += [f"### Provenance ({profile})", _provenance_table(groups)]
    return "\n\n".join(parts), notes


def _beside_note(label: str, group: Group, run: Run) -> str:
    """Why a run is shown beside the counted ones: a later attempt of a counted seed, or a newer config."""
    if run.config_hash == group.config_hash:
        what = f"{label} seed {run.seed}: a later attempt {run.status}, the completed result still counts"
    else:
        what = f"{label} seed {run.seed} of newer config {run.config_hash} {run.status}, not counted"
    return f"{what}: {one_line(run.message)} (`{run.path}`)"


def run_notes(groups: list[Group]) -> list[str]:
    """One note per failed or interrupted run (message and file), per run beside, and per group without data."""
    notes = []
    for group in groups:
        label = f"{group.profile}/{group.model}/{group.task}"
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
        keys = ", ".join(TASK_TITLES.get(key, AVERAGE_TITLE) for key in source.covers)
        prefix = "" if len(row.sources) == 1 else f"{keys} from "
        cited.append(f"{prefix}{source.paper.cite()}, {source.table}")
    note = f" {row.note}" if row.note else ""
    return f"**{row.model}**: " + "; ".join(cited) + "." + note


def render_published(reference: Reference) -> str:
    """The published table, its notes, one source line per row and the other published figures."""
    rows = []
    for row in reference.rows:
        avg = "-" if row.avg == "-" else f"{row.avg:.2f} ({row.avg_tasks} tasks)"
        rows.append(
            [
                row.model,
                *(_published_cell(row.results[t]) for t in LRA_TASKS),
                avg,
                _published_cell(row.results[LM_TASK]),
            ]
        )
    parts = [
        "## Published (from the papers, not run here)",
        markdown_table(_header(), rows),
        "\n".join(f"- {note}" for note in reference.notes),
        "Sources:\n\n" + "\n".join(f"- {_source_line(row)}" for row in reference.rows),
    ]
    if reference.other_figures:
        figures = "\n".join(
            f"- {text} ({source.paper.cite()}, {source.table})." for text, source in reference.other_figures
        )
        parts.append("Other published figures:\n\n" + figures)
    return "\n\n".join(part for part in parts if part)


# --------------------------------------------------------------------------- CSV


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _significant(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else float(f"{value:.{digits}g}")


def csv_row(group: Group) -> dict:
    """One CSV row: everything needed to cite and reproduce a (profile, model, task) cell."""
    values = group.values
    mean, std = mean_and_std(values) if values else (None, None)
    completed = group.with_status("completed")
    statuses = [status for status in ("failed", "interrupted") if group.with_status(status)]
    status = "completed" if values else (statuses[0] if statuses else "no_data")
    n_params = sorted({run.n_params for run in group.runs if run.n_params is not None})
    return {
        "profile": group.profile,
        "model": group.model,
        "task": group.task,
        "metric": "test/ppl" if group.task == LM_TASK else "test/acc (%)",
        "status": status,
        "mean": _rounded(mean),
        "std": _rounded(std),
        "n_seeds": len(values),
        "seeds": ";".join(str(run.seed) for run in completed),
        "n_failed": len(group.shown_with_status("failed")),
        "n_interrupted": len(group.shown_with_status("interrupted")),
        "majority_rate_pct": _rounded(mean_or_none([run.majority_rate for run in completed])),
        "firing_rate_pct": _rounded(mean_or_none([run.firing_rate for run in completed])),
        "energy_mj": _significant(mean_or_none([run.energy_mj for run in completed])),
        "n_params": ";".join(str(n) for n in n_params),
        "wall_time_s": _rounded(mean_or_none([run.wall_time_s for run in completed]), 1),
        "config_hash": group.config_hash,
        "git_commits": ";".join(sorted({run.git_commit for run in group.runs})),
        "n_superseded": group.n_superseded,
    }


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: ("" if value is None else value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


# --------------------------------------------------------------------------- assembly


def _profile_order(profile: str) -> int:
    return PROFILES.index(profile)


def build_leaderboard(
    results_dir: str | Path, reference_path: str | Path, profile: str | None = None
) -> tuple[str, list[dict]]:
    """The leaderboard markdown and its CSV rows, from the result files under ``results_dir``.

    ``profile`` keeps only that profile's runs. A missing or invalid reference file is reported in
    the markdown instead of the published rows; the tables of our runs still build.
    """
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    results_dir = Path(results_dir)
    runs, file_notes = load_runs(results_dir)
    if profile is not None:
        runs = [run for run in runs if run.profile == profile]
    groups, selection_notes = group_runs(runs)
    by_profile: dict[str, list[Group]] = defaultdict(list)
    for group in groups.values():
        by_profile[group.profile].append(group)

    parts = [
        "# Leaderboard",
        f"Built from {len(runs)} usable result file(s) under `{results_dir}`"
        + (f" (profile {profile} only)" if profile else "")
        + (f"; {len(file_notes)} more skipped (see Notes)" if file_notes else "")
        + ". Cells: test accuracy (%) at the best-validation checkpoint, mean +- sample std over "
        "seeds (number of seeds); WikiText-103: test perplexity (lower is better). LRA avg: mean of "
        "the model's LRA task means over the tasks it has completed runs for.",
    ]
    notes = [*file_notes, *selection_notes]
    if not by_profile:
        parts.append(f"**No results yet under `{results_dir}`.**")
    for name in sorted(by_profile, key=_profile_order):
        section, profile_notes = render_profile(name, by_profile[name])
        parts.append(section)
        notes.extend(profile_notes)
    notes.extend(run_notes(list(groups.values())))

    try:
        parts.append(render_published(load_reference(Path(reference_path))))
    except ReferenceFileError as err:
        parts.append(f"## Published\n\nPublished numbers could not be read: {err}")
    parts.append("## Notes\n\n" + ("\n".join(f"- {note}" for note in notes) if notes else "None."))

    rows = [
        csv_row(group)
        for group in sorted(groups.values(), key=lambda g: (_profile_order(g.profile), g.model, TASKS.index(g.task)))
    ]
    return "\n\n".join(parts) + "\n", rows


def write_leaderboard(markdown: str, rows: list[dict], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``leaderboard.md`` and ``leaderboard.csv`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    md_path, csv_path = out_dir / "leaderboard.md", out_dir / "leaderboard.csv"
    write_atomically(md_path, markdown)
    write_atomically(csv_path, csv_text(rows))
    return md_path, csv_path
