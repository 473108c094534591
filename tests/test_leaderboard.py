"""Tests for the leaderboard (lra_snn.results and lra_snn.cli.leaderboard): result files ->
markdown/CSV tables, and the published numbers (lra_snn/results/reference.yaml).

Fake result files (schema version 1, which the board still reads, or version 2 with a recorded
config and code version) are written into tmp_path with fixed modification times so every
"newest" rule is deterministic; expected numbers are worked out by hand.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from lra_snn.cli.leaderboard import main
from lra_snn.config.tasks import ACCURACY, TASK_TABLE
from lra_snn.results.board import mean_and_std
from lra_snn.results.reference import PUBLISHED_FILE, ReferenceFileError, load_reference
from lra_snn.results.render import CSV_COLUMNS, build_leaderboard, csv_text
from lra_snn.results.reproduction import ABS_TOLERANCE
from lra_snn.results.schema import content_digest

LRA_TASKS = TASK_TABLE.ranked_by(ACCURACY)

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE = PUBLISHED_FILE


def write_result(
    root: Path, name: str, *, mtime: float = 1_000.0, attempt: str | None = None, digest: bool = True, **fields
) -> Path:
    """Write ``root/name/result.json`` (a completed s4d/listops/tiny run unless overridden), or with
    ``attempt``, ``root/name/attempts/<attempt>.json``; with its ``record_digest`` unless ``digest`` is false."""
    record = {
        "schema_version": 1,
        "status": "completed",
        "message": "",
        "task": "listops",
        "model": "s4d",
        "seed": 1,
        "profile": "tiny",
        "config_hash": "cfg000000001",
        "git_commit": "abc1234def5678abc1234def5678abc1234def56",
        "metrics": {
            "test/acc": 0.5,
            "test/loss": 1.0,
            "test/majority_rate": 0.175,
            "test/firing_rate": None,
            "test/energy_mj": None,
        },
        "wall_time_s": 10.0,
        "steps": 100,
        "n_params": 1234,
        "device": "cpu",
        "versions": {"torch": "2.13.0"},
        "config": {},
    }
    metrics = fields.pop("metrics", {})
    record.update(fields)
    record["metrics"] = {**record["metrics"], **metrics}
    if digest:
        record["record_digest"] = content_digest(record)
    path = root / name / ("result.json" if attempt is None else f"attempts/{attempt}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record), encoding="utf-8")
    os.utime(path, (mtime, mtime))
    return path


def config(**changes) -> dict:
    """A recorded config (the cell-defining part) of s4d on generated ListOps, with dotted-key ``changes``."""
    base = {
        "task_name": "listops",
        "profile_name": "tiny",
        "data": {"source": "generate", "generator_seed": 0, "n_train": 256, "data_dir": "/somewhere"},
        "model": {"name": "s4d", "encoder": {"d_model": 64}},
        "trainer": {"precision": "32-true", "max_epochs": 2, "accelerator": "cpu"},
        "paths": {"root_dir": "/somewhere"},
        "seed": 1,
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = base
        for key in parents:
            node = node[key]
        node[last] = value
    return base


def write_v2(root: Path, name: str, *, code: str = "src-aaaaaaaaaaaaaaaa", overrides: dict | None = None, **fields):
    """A schema-2 record with a config (``overrides``: dotted keys; its model, task, profile and seed those of
    the record) and a code version."""
    said = {"model.name": "model", "task_name": "task", "profile_name": "profile", "seed": "seed"}
    agreeing = {key: fields[field] for key, field in said.items() if field in fields}
    return write_result(
        root,
        name,
        schema_version=2,
        finished_at="2026-01-01T00:00:00+00:00",
        code_version=code,
        config=config(**{**agreeing, **(overrides or {})}),
        **fields,
    )


def table_row(markdown: str, section: str, first_cell: str) -> list[str]:
    """The cells of the row starting with ``first_cell`` in the table under heading ``section``."""
    body = markdown.split(section, 1)[1]
    for line in body.splitlines():
        if line.startswith(f"| {first_cell} |"):
            return [cell.strip() for cell in line.strip("|").split(" | ")]
    raise AssertionError(f"no row {first_cell!r} under {section!r}")


def notes_of(markdown: str) -> str:
    return markdown.split("## Notes", 1)[1]


# --------------------------------------------------------------------------- statistics and cells


def test_mean_and_sample_std_over_seeds(tmp_path):
    # 59.20, 59.51, 58.89 %: mean 59.20, deviations 0, +0.31, -0.31 -> std sqrt(2 * 0.31^2 / 2) = 0.31
    for seed, acc in [(1, 0.5920), (2, 0.5951), (3, 0.5889)]:
        write_result(tmp_path, f"s{seed}", seed=seed, metrics={"test/acc": acc})
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "59.20 +- 0.31 (3)"
    (row,) = rows
    assert row["mean"] == pytest.approx(59.20, abs=1e-9)
    assert row["std"] == pytest.approx(0.31, abs=1e-9)
    assert row["n_seeds"] == 3 and row["seeds"] == "1;2;3"


def test_single_seed_shows_mean_and_count_without_spread(tmp_path):
    write_result(tmp_path, "a", metrics={"test/acc": 0.612})
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "61.20 (1)"
    assert rows[0]["std"] is None


def test_mean_and_std_rejects_no_values():
    with pytest.raises(ValueError, match="at least one value"):
        mean_and_std([])


def test_wikitext_perplexity_column_is_not_percent(tmp_path):
    for seed, ppl in [(1, 30.0), (2, 32.0)]:
        write_result(tmp_path, f"w{seed}", seed=seed, task="wikitext103", metrics={"test/acc": None, "test/ppl": ppl})
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    row = table_row(markdown, "## Profile: tiny", "s4d")
    assert row[-1] == "31.00 +- 1.41 (2)"  # std of 30, 32 = sqrt(2) = 1.414
    assert row[7:9] == ["-", "-"]  # LRA averages: perplexity is never averaged with accuracies
    assert rows[0]["metric"] == "test/ppl" and rows[0]["mean"] == pytest.approx(31.0)


def test_average_uses_only_completed_lra_tasks(tmp_path):
    write_result(tmp_path, "l", task="listops", metrics={"test/acc": 0.60})
    write_result(tmp_path, "t", task="text", metrics={"test/acc": 0.80})
    write_result(tmp_path, "r", task="retrieval", status="failed", message="CUDA OOM", metrics={"test/acc": None})
    write_result(tmp_path, "i", task="image", status="no_data", message="no data: make data-image")
    write_result(tmp_path, "w", task="wikitext103", metrics={"test/acc": None, "test/ppl": 40.0})
    markdown, _ = build_leaderboard(tmp_path, REFERENCE)
    row = table_row(markdown, "## Profile: tiny", "s4d")
    assert row[1:9] == [
        "60.00 (1)",
        "80.00 (1)",
        "failed (1)",
        "no data: make data-image",
        "not run",
        "not run",
        "2/6 tasks",  # never an average over an incomplete task set
        "2/6 tasks",
    ]
    assert row[9] == "40.00 (1)"


# --------------------------------------------------------------------------- statuses and bad files


def test_no_data_cell_and_note(tmp_path):
    write_result(
        tmp_path,
        "p",
        task="pathx",
        status="no_data",
        message="no data: make data-pathx (looked for data/lra_release/pathx)",
    )
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[6] == "no data: make data-pathx"
    assert "looked for data/lra_release/pathx" in notes_of(markdown)
    assert rows[0]["status"] == "no_data" and rows[0]["mean"] is None


def test_failed_and_nan_loss_runs_are_marked_and_explained(tmp_path):
    write_result(tmp_path, "ok", seed=1, metrics={"test/acc": 0.55})
    failed = write_result(
        tmp_path, "crash", seed=2, status="failed", message="RuntimeError:\n  loss is nan", metrics={"test/acc": None}
    )
    diverged = write_result(tmp_path, "nan", seed=3, metrics={"test/acc": 0.1, "test/loss": float("nan")})
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "55.00 (1), failed (2)"
    notes = notes_of(markdown)
    assert f"seed 2 failed: RuntimeError: loss is nan (`{failed}`)" in notes
    assert f"seed 3 failed: test/loss is nan (diverged) (`{diverged}`)" in notes
    assert rows[0]["n_failed"] == 2 and rows[0]["n_seeds"] == 1


def test_bad_files_are_reported_and_the_rest_builds(tmp_path):
    write_result(tmp_path, "good", metrics={"test/acc": 0.6})
    corrupt = tmp_path / "corrupt" / "result.json"
    corrupt.parent.mkdir()
    corrupt.write_text('{"schema_version": 1, "status": ', encoding="utf-8")
    no_seed = write_result(tmp_path, "noseed", seed=7)
    record = json.loads(no_seed.read_text())
    del record["seed"]
    record["record_digest"] = content_digest(record)
    no_seed.write_text(json.dumps(record))
    old = write_result(tmp_path, "old", schema_version=0)
    percent = write_result(tmp_path, "percent", seed=9, metrics={"test/acc": 61.0})
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    notes = notes_of(markdown)
    assert f"skipped `{corrupt}`: not valid JSON" in notes
    assert f"skipped `{no_seed}`: missing required field 'seed'" in notes
    assert f"skipped `{old}`: schema_version 0 is not supported" in notes
    assert f"skipped `{percent}`: metrics['test/acc'] = 61.0 is not a fraction" in notes
    assert "1 usable result file(s)" in markdown and "4 more skipped (see Notes)" in markdown
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "60.00 (1)"
    assert len(rows) == 1


def test_a_record_whose_fields_disagree_with_its_config_is_skipped(tmp_path):
    """An s4d run relabelled prf (its digest made to match) is not counted as prf."""
    relabelled = write_v2(tmp_path, "relabelled", overrides={"model.name": "s4d"}, model="prf")
    write_v2(tmp_path, "kept", seed=2, metrics={"test/acc": 0.4})
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert [r["model"] for r in rows] == ["s4d"] and rows[0]["n_seeds"] == 1
    assert f"skipped `{relabelled}`: the record says model 'prf' (its config says 's4d')" in notes_of(markdown)
    both = write_v2(tmp_path, "both", overrides={"model.name": "s4d", "seed": 1}, model="prf", seed=3)
    markdown, _ = build_leaderboard(tmp_path, REFERENCE)
    assert (
        f"skipped `{both}`: the record says model 'prf' (its config says 's4d'), seed 3 (its config says 1): a "
        "field was edited after its run wrote it; move the file out of the results folder and rerun the cell"
    ) in notes_of(markdown)


def test_a_record_without_its_digest_is_skipped_outside_the_shipped_runs(tmp_path):
    """With its digest deleted, an edited metric would count: such a file is named and left out."""
    write_result(tmp_path, "kept", metrics={"test/acc": 0.4})
    edited = write_result(tmp_path, "edited", seed=2, metrics={"test/acc": 0.99}, digest=False)
    markdown, _ = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "40.00 (1)"
    assert f"skipped `{edited}`: it has no record_digest, so nothing shows that it is as its run wrote it" in (
        notes_of(markdown)
    )
    assert "move the file out of the results folder and rerun the cell" in notes_of(markdown)


def test_differing_configs_without_a_recorded_config_get_rows_of_their_own(tmp_path):
    # schema-1 records carry no config: the cell hash alone tells them apart; neither replaces the other
    for s in (1, 2):
        write_result(tmp_path, f"old{s}", seed=s, config_hash="oldcfg", mtime=100.0 + s, metrics={"test/acc": 0.30})
    for seed, acc in [(1, 0.70), (2, 0.72)]:
        write_result(
            tmp_path, f"new{seed}", seed=seed, config_hash="newcfg", mtime=200.0 + seed, metrics={"test/acc": acc}
        )
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "71.00 +- 1.41 (2)"  # equal seeds: the newest
    assert table_row(markdown, "## Profile: tiny", "s4d [config oldcfg]")[1] == "30.00 +- 0.00 (2)"
    assert [(r["config_hash"], r["variant"]) for r in rows] == [("newcfg", ""), ("oldcfg", "config oldcfg")]


def test_a_seed_run_twice_counts_once(tmp_path):
    first = write_result(
        tmp_path, "first", seed=1, status="failed", message="node lost", metrics={"test/acc": None}, mtime=100.0
    )
    write_result(tmp_path, "rerun", seed=1, metrics={"test/acc": 0.64}, mtime=200.0)
    markdown, _ = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "64.00 (1)"
    assert f"left out the older `{first}`" in notes_of(markdown)


def test_a_failed_newer_config_is_shown_in_its_own_row_never_instead(tmp_path):
    # e.g. a rerun with trainer.max_epochs=abc: a new config hash, failing in seconds
    for seed, acc in [(1, 0.50), (2, 0.52), (3, 0.54)]:
        write_result(
            tmp_path, f"good{seed}", seed=seed, config_hash="good", mtime=100.0 + seed, metrics={"test/acc": acc}
        )
    bad = write_result(
        tmp_path,
        "bad",
        seed=1,
        config_hash="bad",
        mtime=200.0,
        status="failed",
        message="ValueError: max_epochs=abc",
        metrics={"test/acc": None},
    )
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "52.00 +- 2.00 (3)"
    assert table_row(markdown, "## Profile: tiny", "s4d [config bad]")[1] == "failed (1)"
    assert f"tiny/s4d [config bad]/listops seed 1 failed: ValueError: max_epochs=abc (`{bad}`)" in notes_of(markdown)
    assert rows[0]["config_hash"] == "good" and rows[0]["n_seeds"] == 3 and rows[0]["n_failed"] == 0
    assert rows[1]["config_hash"] == "bad" and rows[1]["n_failed"] == 1


def test_a_result_finished_in_the_future_is_skipped_not_ranked_newest(tmp_path):
    write_result(tmp_path, "now", config_hash="current", metrics={"test/acc": 0.5})
    future = write_result(
        tmp_path, "future", config_hash="edited", finished_at="2099-01-01T00:00:00+00:00", metrics={"test/acc": 0.99}
    )
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "50.00 (1)"
    assert len(rows) == 1
    assert f"skipped `{future}`: finished_at 2099-01-01T00:00:00+00:00 is" in notes_of(markdown)
    assert "in the future" in notes_of(markdown) and rows[0]["config_hash"] == "current"


def test_interrupted_runs_are_shown_as_interrupted_not_failed(tmp_path):
    write_result(tmp_path, "done", seed=1, metrics={"test/acc": 0.55})
    stopped = write_result(
        tmp_path,
        "stopped",
        seed=2,
        schema_version=2,
        finished_at="2026-01-01T00:00:00+00:00",
        status="interrupted",
        message="stopped by SIGTERM at global step 13",
        metrics={"test/acc": None},
    )
    write_result(
        tmp_path,
        "only",
        task="text",
        schema_version=2,
        finished_at="2026-01-01T00:00:00+00:00",
        status="interrupted",
        message="stopped by SIGINT",
        metrics={"test/acc": None},
    )
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    row = table_row(markdown, "## Profile: tiny", "s4d")
    assert row[1:3] == ["55.00 (1), interrupted (1)", "interrupted (1)"]
    assert f"seed 2 interrupted: stopped by SIGTERM at global step 13 (`{stopped}`)" in notes_of(markdown)
    by_task = {r["task"]: r for r in rows}
    assert (by_task["listops"]["n_interrupted"], by_task["listops"]["n_failed"]) == (1, 0)
    assert by_task["text"]["status"] == "interrupted"


def test_a_later_failed_attempt_is_noted_beside_the_completed_seed(tmp_path):
    write_result(tmp_path, "seed_1", metrics={"test/acc": 0.60}, mtime=100.0)
    write_result(
        tmp_path,
        "seed_1",
        attempt="early",
        status="failed",
        message="OOM before it completed",
        metrics={"test/acc": None},
        mtime=50.0,
    )
    later = write_result(
        tmp_path,
        "seed_1",
        attempt="late",
        status="failed",
        message="best.ckpt missing",
        metrics={"test/acc": None},
        mtime=200.0,
    )
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "60.00 (1), failed (1)"
    notes = notes_of(markdown)
    assert f"seed 1: a later attempt failed, the completed result still counts: best.ckpt missing (`{later}`)" in notes
    assert "OOM before it completed" not in notes  # history from before the seed completed
    assert rows[0]["n_seeds"] == 1 and rows[0]["n_failed"] == 1


# --------------------------------------------------------------------------- layout


def test_profiles_get_separate_tables_full_first(tmp_path):
    write_result(tmp_path, "tiny", profile="tiny", metrics={"test/acc": 0.40})
    write_result(tmp_path, "full", profile="full", metrics={"test/acc": 0.58})
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert markdown.index("## Profile: full") < markdown.index("## Profile: tiny")
    assert "## Profile: mini" not in markdown
    assert table_row(markdown, "## Profile: full", "s4d")[1] == "58.00 (1)"
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "40.00 (1)"
    assert [row["profile"] for row in rows] == ["full", "tiny"]
    filtered, filtered_rows = build_leaderboard(tmp_path, REFERENCE, profile="tiny")
    assert "## Profile: full" not in filtered and [r["profile"] for r in filtered_rows] == ["tiny"]


def test_majority_rate_row_and_disagreement_note(tmp_path):
    write_result(tmp_path, "a", model="s4d", metrics={"test/majority_rate": 0.175})
    write_result(tmp_path, "b", model="prf", metrics={"test/majority_rate": 0.175})
    write_result(tmp_path, "c", model="prf", task="text", metrics={"test/majority_rate": 0.5})
    write_result(tmp_path, "d", model="s4d", task="text", metrics={"test/majority_rate": 0.52})
    markdown, _ = build_leaderboard(tmp_path, REFERENCE)
    row = table_row(markdown, "## Profile: tiny", "*majority class (test)*")
    assert row[1:4] == ["17.50", "50.00-52.00", "-"]
    assert "tiny/text: runs report different test majority-class rates (50.00, 52.00)" in notes_of(markdown)


def test_firing_rate_energy_and_provenance_tables(tmp_path):
    write_result(
        tmp_path,
        "a",
        seed=1,
        model="prf",
        metrics={"test/firing_rate": 0.02, "test/energy_mj": 0.1},
        git_commit="1111111111111111",
    )
    write_result(
        tmp_path,
        "b",
        seed=2,
        model="prf",
        metrics={"test/firing_rate": 0.04, "test/energy_mj": 0.2},
        git_commit="1111111111111111+dirty",
    )
    markdown, _ = build_leaderboard(tmp_path, REFERENCE)
    assert "### Firing rate (%) / estimated energy per example (uJ), tiny" in markdown  # one unit per table
    assert table_row(markdown, "### Firing rate", "prf")[1] == "3.00 % / 150"
    provenance = table_row(markdown, "### Provenance and data source (tiny)", "prf")
    # records without a code version stand for their commit; a dirty mark (which cannot tell edited code
    # from a result file in the tree) does not split them, and the provenance keeps it
    assert provenance[:6] == ["prf", "ListOps", "1, 2", "not recorded", "cfg000000001", "git 111111111111"]
    assert provenance[6] == "111111111111, 111111111111+dirty"


def test_surrogate_models_show_their_agreement_and_their_accuracy_with_the_exact_neuron(tmp_path):
    # seed 1: 99.0 % equal spikes, 60 % -> 58 %; seed 2: 98.0 %, 62 % -> 61 %; s4d has no surrogate neuron
    for seed, agreement, acc, exact in [(1, 0.990, 0.60, 0.58), (2, 0.980, 0.62, 0.61)]:
        surrogate = {"test/surrogate_agreement": agreement, "test/exact_neuron/acc": exact}
        write_result(tmp_path, f"ss{seed}", seed=seed, model="spikingssm", metrics={"test/acc": acc, **surrogate})
    write_result(tmp_path, "s4d", model="s4d")
    write_result(tmp_path, "diverged", seed=3, model="spikingssm", metrics={"test/acc": float("nan"), **surrogate})
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    section = "### Surrogate neurons against their exact neuron (tiny)"
    # the diverged seed 3 counts nowhere: two seeds, mean 98.50 +- 0.71; 61 +- 1.41; 59.5 +- 2.12
    assert table_row(markdown, section, "spikingssm") == [
        "spikingssm",
        "ListOps",
        "98.50 +- 0.71 (2)",
        "61.00 +- 1.41 (2)",
        "59.50 +- 2.12 (2)",
    ]
    assert "| s4d |" not in markdown.split(section, 1)[1].split("###", 1)[0]
    by_model = {row["model"]: row for row in rows}
    assert by_model["spikingssm"]["surrogate_agreement_pct"] == 98.5
    assert by_model["spikingssm"]["exact_neuron_mean"] == 59.5
    assert by_model["s4d"]["surrogate_agreement_pct"] is None and by_model["s4d"]["exact_neuron_mean"] is None


def test_the_exact_neuron_perplexity_is_shown_unscaled(tmp_path):
    metrics = {"test/ppl": 40.0, "test/loss": 3.7, "test/surrogate_agreement": 0.99, "test/exact_neuron/ppl": 41.5}
    write_result(tmp_path, "lm", model="spikingssm", task="wikitext103", metrics=metrics)
    rows = {row["model"]: row for row in build_leaderboard(tmp_path, REFERENCE)[1]}
    assert rows["spikingssm"]["exact_neuron_mean"] == 41.5


def test_no_surrogate_table_without_a_surrogate_model(tmp_path):
    write_result(tmp_path, "s4d", model="s4d")
    assert "Surrogate neurons" not in build_leaderboard(tmp_path, REFERENCE)[0]


def test_csv_rows_carry_what_a_citation_needs(tmp_path):
    for seed, acc in [(1, 0.60), (2, 0.62), (3, 0.64)]:
        write_result(
            tmp_path,
            f"s{seed}",
            seed=seed,
            metrics={"test/acc": acc, "test/firing_rate": 0.03},
            wall_time_s=10.0 * seed,
        )
    _, rows = build_leaderboard(tmp_path, REFERENCE)
    (row,) = rows
    assert set(row) == set(CSV_COLUMNS)
    assert row == {
        "profile": "tiny",
        "model": "s4d",
        "variant": "",
        "code_version": "git abc1234def56",
        "task": "listops",
        "metric": "test/acc (%)",
        "status": "completed",
        "mean": 62.0,
        "std": 2.0,
        "n_seeds": 3,
        "seeds": "1;2;3",
        "n_failed": 0,
        "n_interrupted": 0,
        "data_source": "",
        "majority_rate_pct": 17.5,
        "firing_rate_pct": 3.0,
        "energy_mj": None,
        "surrogate_agreement_pct": None,
        "exact_neuron_mean": None,
        "n_params": "1234",
        "wall_time_s": 20.0,
        "config_hash": "cfg000000001",
        "git_commits": "abc1234def5678abc1234def5678abc1234def56",
        "shipped_mean": None,
        "shipped_std": None,
        "shipped_n_seeds": None,
        "shipped_code_version": None,
        "identical_seeds": None,
        "delta_shipped_std": None,
        "verdict": None,
    }
    parsed = list(csv.DictReader(csv_text(rows).splitlines()))
    assert parsed[0]["mean"] == "62.0" and parsed[0]["energy_mj"] == ""


# --------------------------------------------------------------------------- like with like


def _lra_row(root: Path, model: str, accuracies: dict[str, float]) -> None:
    for task, acc in accuracies.items():
        write_result(root, f"{model}-{task}", model=model, task=task, metrics={"test/acc": acc})


def test_never_an_average_over_an_incomplete_task_set(tmp_path):
    five = {"listops": 0.50, "text": 0.60, "retrieval": 0.70, "image": 0.80, "pathfinder": 0.90}
    _lra_row(tmp_path, "all_six", {**five, "pathx": 0.56})  # (350 + 56) / 6 = 67.67; five: 350 / 5 = 70.00
    _lra_row(tmp_path, "no_pathx", five)
    _lra_row(tmp_path, "four", {task: five[task] for task in ("listops", "text", "retrieval", "image")})
    _lra_row(tmp_path, "best_listops", {"listops": 0.99})
    markdown, _ = build_leaderboard(tmp_path, REFERENCE)
    board = "## Profile: tiny"
    assert table_row(markdown, board, "all_six")[7:9] == ["70.00", "67.67"]
    assert table_row(markdown, board, "no_pathx")[7:9] == ["70.00", "5/6 tasks"]
    assert table_row(markdown, board, "four")[7:9] == ["4/6 tasks", "4/6 tasks"]
    assert table_row(markdown, board, "best_listops")[7:9] == ["1/6 tasks", "1/6 tasks"]
    assert (
        "| Model | ListOps | Text | Retrieval | Image | Pathfinder | Path-X | LRA avg (5, no Path-X) | LRA avg (6) |"
        in (markdown)
    )
    # ranked by the 6-task average, then the 5-task one, then task by task: a high ListOps alone ranks third
    table = markdown.split(board, 1)[1].split("| Model |", 1)[1].split("\n\n", 1)[0]
    order = [line.split(" | ")[0][2:] for line in table.splitlines()[2:]]
    assert order == ["all_six", "no_pathx", "best_listops", "four", "*majority class (test)*"]


def test_cpu_profile_boards_never_sit_beside_published_rows(tmp_path):
    write_result(tmp_path, "mini", profile="mini", metrics={"test/acc": 0.61})
    write_result(tmp_path, "tiny", profile="tiny", metrics={"test/acc": 0.40})
    markdown, _ = build_leaderboard(tmp_path, REFERENCE)
    full, rest = markdown.split("## Profile: mini", 1)
    assert "### Published (from the papers, not run here)" in full and "S4D-Inv" in full
    assert "No full-profile runs under" in full
    assert "S4D-Inv" not in rest and "Published" not in rest
    for profile in ("mini", "tiny"):
        section = markdown.split(f"## Profile: {profile}", 1)[1].split("\n| ", 1)[0]
        assert "not comparable with published numbers" in section
    filtered, _ = build_leaderboard(tmp_path, REFERENCE, profile="mini")
    assert "S4D-Inv" not in filtered and "## Profile: full" not in filtered


def test_seeds_of_different_code_versions_are_never_pooled(tmp_path):
    write_v2(tmp_path, "a1", seed=1, code="src-1111111111111111", metrics={"test/acc": 0.50})
    write_v2(tmp_path, "a2", seed=2, code="src-1111111111111111", metrics={"test/acc": 0.52})
    write_v2(tmp_path, "b1", seed=1, code="src-2222222222222222", metrics={"test/acc": 0.70})
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d [src-1111111111111111]")[1].startswith("51.00 +- 1.41 (2)")
    assert table_row(markdown, "## Profile: tiny", "s4d [src-2222222222222222]")[1].startswith("70.00 (1)")
    assert sorted((r["code_version"], r["n_seeds"]) for r in rows) == [
        ("src-1111111111111111", 2),
        ("src-2222222222222222", 1),
    ]


def test_seeds_that_read_other_data_files_are_never_pooled(tmp_path):
    release = {"sources": {"/data/lra_release/listops-1000": "e" * 64}}
    write_v2(tmp_path, "a1", seed=1, data={"digest": "1" * 64, **release}, metrics={"test/acc": 0.50})
    write_v2(tmp_path, "a2", seed=2, data={"digest": "1" * 64, **release}, metrics={"test/acc": 0.52})
    write_v2(tmp_path, "b3", seed=3, data={"digest": "2" * 64, **release}, metrics={"test/acc": 0.90})
    write_v2(tmp_path, "c4", seed=4, metrics={"test/acc": 0.10})  # written before records named their data
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    section = "## Profile: tiny"
    assert table_row(markdown, section, "s4d [src-aaaaaaaaaaaaaaaa, data 11111111]")[1].startswith("51.00 +- 1.41 (2)")
    assert table_row(markdown, section, "s4d [src-aaaaaaaaaaaaaaaa, data 22222222]")[1].startswith("90.00 (1)")
    assert table_row(markdown, section, "s4d [src-aaaaaaaaaaaaaaaa, data not recorded]")[1].startswith("10.00 (1)")
    assert sorted(r["n_seeds"] for r in rows) == [1, 1, 2]


def test_tasks_of_one_variant_at_different_code_versions_share_a_row(tmp_path):
    write_v2(tmp_path, "l", code="src-1111111111111111", metrics={"test/acc": 0.50})
    text = {"task_name": "text"}
    write_v2(tmp_path, "t", task="text", code="src-2222222222222222", overrides=text, metrics={"test/acc": 0.70})
    markdown, _ = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[1:3] == [
        "50.00 (1) [generated, seed 0]",
        "70.00 (1) [generated, seed 0]",
    ]
    assert table_row(markdown, "### Provenance", "s4d")[5] == "src-1111111111111111"


def test_variant_rows_are_separated_and_labelled_by_what_differs(tmp_path):
    for seed, acc in [(1, 0.50), (2, 0.54)]:
        write_v2(tmp_path, f"default{seed}", seed=seed, config_hash="h-default", metrics={"test/acc": acc})
    bf16 = {"trainer.precision": "bf16-mixed"}
    write_v2(tmp_path, "bf16", config_hash="h-bf16", overrides=bf16, metrics={"test/acc": 0.40})
    wide = {"model.encoder.d_model": 128, "data.source": "release"}
    write_v2(tmp_path, "wide", config_hash="h-wide", overrides=wide, metrics={"test/acc": 0.60})
    # machine-specific keys (where the data lives, the accelerator) make no variant
    moved = {"data.data_dir": "/elsewhere", "trainer.accelerator": "gpu"}
    write_v2(tmp_path, "moved", seed=3, config_hash="h-default", overrides=moved, metrics={"test/acc": 0.52})
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    board = "## Profile: tiny"
    assert table_row(markdown, board, "s4d")[1] == "52.00 +- 2.00 (3) [generated, seed 0]"
    assert table_row(markdown, board, "s4d [trainer.precision=bf16-mixed]")[1] == "40.00 (1) [generated, seed 0]"
    label = "s4d [data.source=release, model.encoder.d_model=128]"
    assert table_row(markdown, board, label)[1] == "60.00 (1) [release]"
    variants = sorted(r["variant"] for r in rows)
    assert variants == ["", "data.source=release, model.encoder.d_model=128", "trainer.precision=bf16-mixed"]


def test_a_key_at_its_neutral_value_makes_no_variant(tmp_path):
    # runs recorded before trainer.accumulate_grad_batches existed, and runs with it at 1, are one cell
    write_v2(tmp_path, "before", seed=1, config_hash="h-default", metrics={"test/acc": 0.50})
    neutral = {"trainer.accumulate_grad_batches": 1}
    write_v2(tmp_path, "after", seed=2, config_hash="h-default", overrides=neutral, metrics={"test/acc": 0.54})
    accumulated = {"trainer.accumulate_grad_batches": 4}
    write_v2(tmp_path, "acc4", seed=1, config_hash="h-acc4", overrides=accumulated, metrics={"test/acc": 0.40})
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert table_row(markdown, "## Profile: tiny", "s4d")[1] == "52.00 +- 2.83 (2) [generated, seed 0]"
    assert sorted(r["variant"] for r in rows) == ["", "trainer.accumulate_grad_batches=4"]


def test_the_board_identity_and_the_cell_hash_are_one_definition():
    from lra_snn.config import cell_hash
    from lra_snn.results.variants import identity_key

    pairs = [
        ({}, {"trainer.accumulate_grad_batches": 1}),  # a neutral value
        ({}, {"data.data_dir": "/elsewhere", "trainer.accelerator": "gpu"}),  # machine-specific keys
        ({}, {"trainer.precision": "bf16-mixed"}),
        ({}, {"model.encoder.d_model": 128}),
    ]
    for left, right in pairs:
        a, b = config(**left), config(**right)
        same_hash = cell_hash(a) == cell_hash(b)
        assert same_hash == (identity_key(a, "") == identity_key(b, "")), right


def _reproduction(markdown: str, label: str, task: str = "ListOps") -> list[str]:
    section = markdown.split("### Reproduction of the shipped runs (tiny)", 1)[1]
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if cells[:2] == [label, task]:
            return cells
    raise AssertionError(f"no reproduction row {label!r} / {task!r}")


def test_reproduction_verdicts_against_the_shipped_runs(tmp_path):
    shipped, yours = tmp_path / "shipped", tmp_path / "yours"
    # shipped ListOps: 50, 52, 54 -> mean 52, std 2; shipped Text: one seed, 60
    for seed, acc in [(1, 0.50), (2, 0.52), (3, 0.54)]:
        write_v2(shipped, f"l{seed}", seed=seed, code="src-5555555555555555", metrics={"test/acc": acc})
    text = {"task_name": "text"}
    write_v2(shipped, "t", task="text", overrides=text, metrics={"test/acc": 0.60})
    write_v2(shipped, "p", model="prf", metrics={"test/acc": 0.30})
    write_v2(shipped, "i", task="image", overrides={"task_name": "image"}, metrics={"test/acc": 0.30})
    # yours, on seeds the shipped cells lack (means compared): ListOps 55.0 (+1.5 std, reproduced), Text 60.9
    # (within the absolute tolerance of a single shipped seed), prf 35 (differs), image with another width
    # (config differs), pathfinder (no reference)
    write_v2(yours, "l", seed=7, metrics={"test/acc": 0.55})
    write_v2(yours, "t", seed=7, task="text", overrides=text, metrics={"test/acc": 0.609})
    write_v2(yours, "p", seed=7, model="prf", metrics={"test/acc": 0.35})
    image = {"task_name": "image", "model.encoder.d_model": 32}
    write_v2(yours, "i", task="image", overrides=image, metrics={"test/acc": 0.30})
    write_v2(yours, "pf", task="pathfinder", overrides={"task_name": "pathfinder"}, metrics={"test/acc": 0.5})
    markdown, rows = build_leaderboard(yours, REFERENCE, reference_runs=shipped)
    means = "no seed in common (means compared)"
    assert _reproduction(markdown, "s4d")[2:] == [
        "55.00 (1)",
        "52.00 +- 2.00 (3)",
        means,
        "+1.50",
        "reproduced",
        "src-aaaaaaaaaaaaaaaa / src-5555555555555555",
    ]
    text_row = _reproduction(markdown, "s4d", "Text")
    assert text_row[2:] == [
        "60.90 (1)",
        "60.00 (1)",
        means,
        "n/a (1 shipped seed)",
        "reproduced",
        "src-aaaaaaaaaaaaaaaa (both)",
    ]
    assert ABS_TOLERANCE >= 0.9
    assert _reproduction(markdown, "prf")[3:7] == ["30.00 (1)", means, "n/a (1 shipped seed)", "differs"]
    assert _reproduction(markdown, "s4d", "Image")[6] == "config differs (model.encoder.d_model=32)"
    assert _reproduction(markdown, "s4d", "Pathfinder")[3:] == ["-", "-", "-", "no reference", "-"]
    by_cell = {(r["model"], r["task"]): r for r in rows}
    assert by_cell[("s4d", "listops")]["delta_shipped_std"] == 1.5
    assert by_cell[("s4d", "listops")]["shipped_n_seeds"] == 3 and by_cell[("prf", "listops")]["verdict"] == "differs"
    assert by_cell[("s4d", "listops")]["shipped_code_version"] == "src-5555555555555555"
    assert by_cell[("s4d", "listops")]["identical_seeds"] == ""


def test_seeds_both_ran_are_compared_seed_with_seed(tmp_path):
    shipped, yours = tmp_path / "shipped", tmp_path / "yours"
    for seed, acc in [(1, 0.50), (2, 0.52), (3, 0.54)]:  # mean 52, std 2
        write_v2(shipped, f"l{seed}", seed=seed, code="src-5555555555555555", metrics={"test/acc": acc})
        write_v2(shipped, f"p{seed}", seed=seed, model="prf", metrics={"test/acc": acc})
    # s4d: seed 1 equal, seed 2 one point up: mean paired difference +0.5 (0.25 std), though the means
    # (51.5 against 52) differ the other way; prf: seeds 1-3 equal bit for bit
    write_v2(yours, "l1", seed=1, metrics={"test/acc": 0.50})
    write_v2(yours, "l2", seed=2, metrics={"test/acc": 0.53})
    for seed, acc in [(1, 0.50), (2, 0.52), (3, 0.54)]:
        write_v2(yours, f"p{seed}", seed=seed, model="prf", metrics={"test/acc": acc})
    markdown, rows = build_leaderboard(yours, REFERENCE, reference_runs=shipped)
    assert _reproduction(markdown, "s4d")[4:7] == ["seed 1 identical, seed 2 +1.00", "+0.25", "reproduced"]
    assert _reproduction(markdown, "prf")[4:] == [
        "3 of 3 identical",
        "+0.00",
        "reproduced exactly",
        "src-aaaaaaaaaaaaaaaa (both)",
    ]
    by_cell = {r["model"]: r for r in rows}
    assert by_cell["prf"]["identical_seeds"] == "1;2;3" and by_cell["s4d"]["identical_seeds"] == "1"
    # a seed of yours the shipped cell lacks keeps "exactly" from being said
    write_v2(yours, "p4", seed=4, model="prf", metrics={"test/acc": 0.52})
    markdown, _ = build_leaderboard(yours, REFERENCE, reference_runs=shipped)
    assert _reproduction(markdown, "prf")[4:7] == ["3 of 3 identical", "+0.00", "reproduced"]


def test_reproduction_beyond_two_shipped_std_differs_and_a_zero_std_uses_the_tolerance(tmp_path):
    shipped, yours = tmp_path / "shipped", tmp_path / "yours"
    for seed, acc in [(1, 0.50), (2, 0.52), (3, 0.54)]:
        write_v2(shipped, f"l{seed}", seed=seed, metrics={"test/acc": acc})
        write_v2(shipped, f"p{seed}", seed=seed, model="prf", metrics={"test/acc": 0.40})  # std 0
    write_v2(yours, "l", seed=7, metrics={"test/acc": 0.5610})  # +2.05 std
    write_v2(yours, "p", seed=7, model="prf", metrics={"test/acc": 0.4150})  # 1.5 points from a spread of 0
    markdown, _ = build_leaderboard(yours, REFERENCE, reference_runs=shipped)
    assert _reproduction(markdown, "s4d")[5:7] == ["+2.05", "differs"]
    assert _reproduction(markdown, "prf")[5:7] == ["n/a (shipped std 0)", "differs"]


def test_make_leaderboard_renders_the_committed_board_byte_for_byte(tmp_path, monkeypatch):
    # what `make leaderboard` runs, from the repository root: a clean clone stays clean
    monkeypatch.chdir(REPO_ROOT)
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        assert main(["--results", "results/reference-runs", "--out", str(out)]) == 0
    for name in ("leaderboard.md", "leaderboard.csv"):
        made = (first / name).read_bytes()
        assert made == (second / name).read_bytes()
        assert made == (REPO_ROOT / "results" / name).read_bytes(), f"results/{name} is stale: run make leaderboard"


def test_board_does_not_depend_on_file_times_or_reading_order(tmp_path):
    for seed, acc in [(1, 0.50), (2, 0.52)]:
        write_v2(tmp_path / "a", f"s{seed}", seed=seed, mtime=100.0 + seed, metrics={"test/acc": acc})
        write_v2(tmp_path / "b", f"s{seed}", seed=seed, mtime=900.0 - seed, metrics={"test/acc": acc})
    board_a, rows_a = build_leaderboard(tmp_path / "a", REFERENCE)
    board_b, rows_b = build_leaderboard(tmp_path / "b", REFERENCE)
    assert board_a.replace(str(tmp_path / "a"), "X") == board_b.replace(str(tmp_path / "b"), "X")
    assert rows_a == rows_b


# --------------------------------------------------------------------------- published numbers

# recipes.md, "Published LRA accuracy (%)": ListOps, Text, Retrieval, Image, Pathfinder, Path-X, avg
RECIPES_TABLE = {
    "Transformer (LRA paper)": (36.37, 64.27, 57.46, 42.44, 71.40, "fail", 54.39),
    "S4 (updated)": (59.60, 86.82, 90.90, 88.65, 94.20, 96.35, 86.09),
    "S4D-Inv": (60.18, 87.34, 91.09, 87.83, 93.78, 92.80, 85.50),
    "S5": (62.15, 89.31, 91.40, 88.00, 95.33, 98.58, 87.46),
    "Mega": (63.14, 90.43, 91.25, 90.44, 96.01, 97.98, 88.21),
    "PRF (SD-TCM)": (59.20, 86.33, 89.88, 84.77, 91.76, "not solved", 82.39),
    "SpikingSSMs": (60.23, 80.41, 88.77, 88.21, 93.51, 94.82, 84.33),
    "SPikE-SSM": ("-", "-", "-", "-", "-", "-", 84.18),
    "Binary S4D + GSU": (59.60, 86.50, 90.22, 85.00, 91.30, "-", 82.52),
    "PSN": ("-", "-", "-", "-", "-", "-", "-"),
    "DSN": ("-", "-", "-", "-", "-", "-", "-"),
}
# recipes.md, "Other published figures": WikiText-103 test perplexity
RECIPES_PERPLEXITY = {"S4 (updated)": 20.95, "SpikingSSMs": 33.94, "SPikE-SSM": 33.2, "DSN": 28.50}


def test_reference_matches_recipes_table():
    reference = load_reference(REFERENCE)
    rows = {row.model: row for row in reference.rows}
    assert list(rows) == list(RECIPES_TABLE)
    for model, expected in RECIPES_TABLE.items():
        row = rows[model]
        assert (*(row.results[task] for task in LRA_TASKS), row.avg) == expected, model
        assert row.results["wikitext103"] == RECIPES_PERPLEXITY.get(model, "-"), model
    assert rows["S4D-Inv"].results["listops"] == 60.18
    assert rows["PRF (SD-TCM)"].results["pathfinder"] == 91.76


def test_reference_averages_agree_with_task_numbers_and_every_number_is_cited():
    for row in load_reference(REFERENCE).rows:
        numbers = [row.results[t] for t in LRA_TASKS if isinstance(row.results[t], float)]
        if numbers:
            assert row.avg_tasks == len(numbers), row.model
            assert sum(numbers) / len(numbers) == pytest.approx(row.avg, abs=0.0051), row.model
        for source in row.sources:
            assert source.paper.arxiv and source.paper.venue and source.paper.authors and source.table


def test_published_table_is_separate_and_carries_the_notes(tmp_path):
    markdown, _ = build_leaderboard(tmp_path, REFERENCE)
    published = markdown.split("### Published", 1)[1]
    # averages recomputed under both task sets; Path-X without a number counts as 50 in the six
    # (59.20 + 86.33 + 89.88 + 84.77 + 91.76 + 50) / 6 = 76.99; the paper's 82.39 is our 5-task average
    assert table_row(published, "| Model |", "PRF (SD-TCM)") == [
        "PRF (SD-TCM)",
        "59.20",
        "86.33",
        "89.88",
        "84.77",
        "91.76",
        "not solved",
        "82.39",
        "76.99*",
        "same",
        "-",
    ]
    # (36.37 + 64.27 + 57.46 + 42.44 + 71.40 + 50) / 6 = 53.66
    assert table_row(published, "| Model |", "Transformer (LRA paper)")[7:10] == ["54.39", "53.66*", "same"]
    # no per-task numbers: nothing recomputed, the paper's own figure kept beside
    assert table_row(published, "| Model |", "SPikE-SSM")[7:11] == ["-", "-", "84.18 (6 tasks)", "33.20"]
    assert table_row(published, "| Model |", "S4 (updated)")[-1] == "20.95"
    assert "Retrieval: numbers from PyTorch implementations" in published
    assert "SPikE-SSM published only an LRA average" in published
    assert "arXiv:2011.04006" in published


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda row: row["results"].update(listops=0), "out of range (a missing number is '-', not 0)"),
        (lambda row: row["results"].update(path_y=55.0), "'results' names unknown tasks ['path_y']"),
        (lambda row: row["sources"][0]["covers"].remove("avg"), "sources cover"),
        (lambda row: row.update(paper="nobody"), "paper 'nobody' is not among the keys"),
    ],
)
def test_reference_validation_names_the_entry(tmp_path, edit, message):
    import yaml

    raw = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    edit(raw["published"][0])
    broken = tmp_path / "reference.yaml"
    broken.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ReferenceFileError, match="published\\[0\\] \\(Transformer \\(LRA paper\\)\\)") as err:
        load_reference(broken)
    assert message in str(err.value)
    markdown, _ = build_leaderboard(tmp_path / "runs", broken)
    assert "Published numbers could not be read" in markdown


def test_a_task_a_published_row_leaves_out_reads_as_nothing_published(tmp_path):
    import yaml

    raw = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    row = next(entry for entry in raw["published"] if entry["model"] == "S4D-Inv")
    assert row["results"].pop("wikitext103") == "-"
    edited = tmp_path / "reference.yaml"
    edited.write_text(yaml.safe_dump(raw), encoding="utf-8")
    published = {row.model: row for row in load_reference(edited).rows}
    assert published["S4D-Inv"].results["wikitext103"] == "-"
    assert published["S4D-Inv"].results == {row.model: row for row in load_reference(REFERENCE).rows}["S4D-Inv"].results


# --------------------------------------------------------------------------- CLI


def test_cli_without_results_writes_both_files_and_exits_zero(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    runs.mkdir()  # an empty folder: a board with no runs (a missing one is an error)
    code = main(["--results", str(runs), "--out", str(out), "--reference", str(REFERENCE)])
    assert code == 0
    markdown = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert f"No results yet under `{runs}`" in markdown
    assert "| S4D-Inv | 60.18 |" in markdown  # the full board shows the published rows even without runs
    assert "No full-profile runs under" in markdown
    assert (out / "leaderboard.csv").read_text(encoding="utf-8") == ",".join(CSV_COLUMNS) + "\n"
    assert capsys.readouterr().out == markdown
    assert sorted(p.name for p in out.iterdir()) == ["leaderboard.csv", "leaderboard.md"]


def test_cli_with_results_and_profile_filter(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    write_result(runs, "a", profile="mini", metrics={"test/acc": 0.5})
    write_result(runs, "b", profile="tiny", metrics={"test/acc": 0.4})
    assert main(["--results", str(runs), "--out", str(out), "--reference", str(REFERENCE), "--profile", "mini"]) == 0
    rows = list(csv.DictReader((out / "leaderboard.csv").read_text(encoding="utf-8").splitlines()))
    assert [(r["profile"], r["mean"]) for r in rows] == [("mini", "50.0")]
    assert "## Profile: tiny" not in capsys.readouterr().out


def test_cli_refuses_a_missing_reference_runs_folder(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["--results", str(tmp_path), "--out", str(tmp_path / "out"), "--reference-runs", str(missing)]) == 2
    assert f"--reference-runs {missing}: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_ad_hoc_runs_default_to_a_git_ignored_folder_apart_from_the_shipped_runs():
    import shutil
    import subprocess

    import yaml

    paths = yaml.safe_load((REPO_ROOT / "conf" / "paths" / "default.yaml").read_text(encoding="utf-8"))
    assert paths["results_dir"] == "${paths.root_dir}/results/local"
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO_ROOT, check=False).returncode == 0

    assert ignored("results/local/runs/tiny/listops/s4d/0123456789/seed_1/result.json")
    assert not ignored("results/reference-runs/mini/listops/s4d/8d52048ac6/seed_1/result.json")


def test_a_lone_variant_is_labelled_against_todays_default_config():
    # a task whose only runs used a non-default setting is shown as that variant, not as the model's default
    from lra_snn.results.variants import changes_only, default_identity, variant_label

    default = default_identity("mini", "s4d", "listops")
    assert default is not None
    settings = json.loads(default)
    settings["task.lr"] = 0.123
    variant = json.dumps(settings, sort_keys=True)
    assert changes_only(variant, default)
    assert variant_label(variant, default) == "task.lr=0.123"
    del settings["task.lr"]  # a run recorded before a setting existed is not compared with today's config
    assert not changes_only(json.dumps(settings, sort_keys=True), default)
    assert default_identity("mini", "no_such_model", "listops") is None


def test_a_mistyped_results_folder_is_an_error_and_the_board_is_kept(tmp_path, capsys):
    out = tmp_path / "board"
    out.mkdir()
    (out / "leaderboard.md").write_text("the board before\n")
    assert main(["--results", str(tmp_path / "reslts"), "--out", str(out)]) == 2
    assert f"--results {tmp_path / 'reslts'}: no such folder; nothing was written" in capsys.readouterr().err
    assert (out / "leaderboard.md").read_text() == "the board before\n"


def test_a_results_folder_without_usable_runs_never_replaces_a_board_with_rows(tmp_path, capsys):
    runs, empty, out = tmp_path / "runs", tmp_path / "empty", tmp_path / "board"
    write_result(runs, "s4d", metrics={"test/acc": 0.6})
    empty.mkdir()
    assert main(["--results", str(runs), "--out", str(out)]) == 0
    before = {name: (out / name).read_text() for name in ("leaderboard.md", "leaderboard.csv")}
    capsys.readouterr()
    assert main(["--results", str(empty), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"no usable result under --results {empty}" in err and f"the board in {out} (1 rows) is left" in err
    assert {name: (out / name).read_text() for name in before} == before
    (out / "leaderboard.csv").unlink()  # the advice: delete the board first to write an empty one
    assert main(["--results", str(empty), "--out", str(out)]) == 0
    assert "0 usable result file(s)" in (out / "leaderboard.md").read_text()
    assert main(["--results", str(empty), "--out", str(out)]) == 0  # an empty board may replace an empty one


def test_the_board_is_never_written_into_the_shipped_runs(tmp_path, capsys):
    from lra_snn.config.locations import SHIPPED_RUNS_DIR

    write_result(tmp_path, "s4d", model="s4d")
    assert main(["--results", str(tmp_path), "--out", str(SHIPPED_RUNS_DIR)]) == 2
    assert "the shipped runs, which no command writes to" in capsys.readouterr().err
    assert not (SHIPPED_RUNS_DIR / "leaderboard.md").exists()


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [("seed", 2, "seed '2' (its folder says '1')"), ("model", "prf", "model 'prf' (its folder says 's4d')")],
)
def test_a_record_in_another_run_s_folder_is_refused_not_counted(tmp_path, field, value, said):
    cells = REPO_ROOT / "results" / "reference-runs" / "mini" / "listops" / "s4d"
    shipped = sorted(cells.rglob("seed_1"))[0]
    seed_folder = tmp_path / shipped.relative_to(REPO_ROOT / "results" / "reference-runs")
    seed_folder.mkdir(parents=True)
    record = json.loads((shipped / "result.json").read_text())
    record[field] = value
    if field == "model":  # edited with its config and digest made to match: only the folder tells
        record["config"]["model"]["name"] = value
    else:
        record["config"][field] = value
    record["record_digest"] = content_digest(record)
    (seed_folder / "result.json").write_text(json.dumps(record))
    markdown, rows = build_leaderboard(tmp_path, REFERENCE)
    assert rows == []  # not counted anywhere
    assert f"the record says {said}: copied or edited into another run's place" in notes_of(markdown)


def test_the_closest_shipped_config_and_the_fullest_shipped_version_are_the_references(tmp_path):
    shipped, yours = tmp_path / "shipped", tmp_path / "yours"
    image = {"task_name": "image"}
    # two shipped Image configs: d_model 64 (two keys from yours) and d_model 32 (one key from yours)
    write_v2(shipped, "far", task="image", overrides={**image, "model.encoder.d_model": 64}, metrics={"test/acc": 0.3})
    near = {**image, "model.encoder.d_model": 32}
    write_v2(shipped, "near", task="image", overrides=near, metrics={"test/acc": 0.31})
    write_v2(yours, "i", task="image", overrides={**near, "model.encoder.n_layers": 3}, metrics={"test/acc": 0.3})
    # ListOps shipped at two code versions: one seed at one, three at the other (the fuller one counts)
    write_v2(shipped, "old", seed=1, code="src-1111111111111111", metrics={"test/acc": 0.40})
    for seed, acc in [(1, 0.50), (2, 0.52), (3, 0.54)]:
        write_v2(shipped, f"new{seed}", seed=seed, code="src-2222222222222222", metrics={"test/acc": acc})
    write_v2(yours, "l", seed=9, metrics={"test/acc": 0.52})
    # Text: one shipped seed, yours 1.0 point up (exactly the tolerance: reproduced) and PRF 1.5 up (differs)
    text = {"task_name": "text"}
    write_v2(shipped, "t", task="text", overrides=text, metrics={"test/acc": 0.50})
    write_v2(yours, "t", seed=9, task="text", overrides=text, metrics={"test/acc": 0.51})
    write_v2(shipped, "p", model="prf", metrics={"test/acc": 0.50})
    write_v2(yours, "p", seed=9, model="prf", metrics={"test/acc": 0.515})
    markdown, _ = build_leaderboard(yours, REFERENCE, reference_runs=shipped)
    image_row = _reproduction(markdown, "s4d", "Image")
    assert image_row[3] == "31.00 (1)" and image_row[5] == "-"  # the closest config beside it, no difference
    assert image_row[6] == "config differs (model.encoder.n_layers=3)"
    assert _reproduction(markdown, "s4d")[3] == "52.00 +- 2.00 (3)"
    assert _reproduction(markdown, "s4d", "Text")[4:7] == [
        "no seed in common (means compared)",
        "n/a (1 shipped seed)",
        "reproduced",
    ]
    assert _reproduction(markdown, "prf")[5:7] == ["n/a (1 shipped seed)", "differs"]


def test_among_equally_close_shipped_configs_the_one_with_most_seeds_then_the_newest_counts(tmp_path):
    shipped, yours = tmp_path / "shipped", tmp_path / "yours"
    image = {"task_name": "image"}
    one = {**image, "model.encoder.d_model": 48}
    three = {**image, "model.encoder.d_model": 80}
    write_v2(shipped, "one", task="image", overrides=one, metrics={"test/acc": 0.2})
    for seed in (1, 2, 3):
        write_v2(shipped, f"three{seed}", seed=seed, task="image", overrides=three, metrics={"test/acc": 0.4})
    write_v2(yours, "i", task="image", overrides={**image, "model.encoder.d_model": 32}, metrics={"test/acc": 0.3})
    markdown, _ = build_leaderboard(yours, REFERENCE, reference_runs=shipped)
    assert _reproduction(markdown, "s4d", "Image")[3] == "40.00 +- 0.00 (3)"

    newer = tmp_path / "newer"
    for name, overrides, acc, finished in (("a", one, 0.2, "2026-03-01"), ("b", three, 0.4, "2026-01-01")):
        write_result(
            newer,
            name,
            task="image",
            schema_version=2,
            finished_at=f"{finished}T00:00:00+00:00",
            code_version="src-aaaaaaaaaaaaaaaa",
            config=config(**overrides),
            metrics={"test/acc": acc},
        )
    markdown, _ = build_leaderboard(yours, REFERENCE, reference_runs=newer)
    assert _reproduction(markdown, "s4d", "Image")[3] == "20.00 (1)"  # one seed each: the newer counts
