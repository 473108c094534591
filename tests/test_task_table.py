"""The task table (conf/tasks.yaml): its checks, the one averaging rule, and the prose the board derives from it."""

from __future__ import annotations

import pytest
import yaml

from lra_snn.config.tasks import TASK_TABLE, TASK_TABLE_FILE, TaskTableError, parse_task_table
from lra_snn.results.averages import average, averages_prose, published_averages_prose


def table_with(edit) -> dict:
    raw = yaml.safe_load(TASK_TABLE_FILE.read_text(encoding="utf-8"))
    edit(raw)
    return raw


def test_the_shipped_table_in_column_order():
    assert TASK_TABLE.names == ("listops", "text", "retrieval", "image", "pathfinder", "pathx", "wikitext103")
    assert [(a.name, a.tasks) for a in TASK_TABLE.averages] == [
        ("lra5", ("listops", "text", "retrieval", "image", "pathfinder")),
        ("lra6", ("listops", "text", "retrieval", "image", "pathfinder", "pathx")),
    ]
    assert TASK_TABLE.ranked_by("test/ppl") == ("wikitext103",)
    assert TASK_TABLE.column_title("wikitext103") == "WikiText-103 (ppl)"
    assert TASK_TABLE.column_title("pathx") == "Path-X"


def test_an_appended_task_counts_only_in_the_averages_its_row_names():
    def append(raw):
        raw["tasks"]["hyena_tasks"] = {"title": "Hyena", "metric": "test/acc", "averages": []}
        raw["tasks"]["in_six"] = {"title": "In six", "metric": "test/acc", "averages": ["lra6"]}

    table = parse_task_table(table_with(append), "edited")
    lra5, lra6 = table.averages
    assert "hyena_tasks" not in lra5.tasks + lra6.tasks and lra6.tasks[-1] == "in_six"
    numbers = {task: 60.0 for task in TASK_TABLE.names} | {"in_six": 90.0, "hyena_tasks": 0.5}
    assert average(lra5, numbers, table) == (60.0, ())
    assert average(lra6, numbers, table) == (pytest.approx((6 * 60.0 + 90.0) / 7), ())
    assert averages_prose(table).endswith("LRA avg (6) adds Path-X and In six")


def test_one_rule_for_our_rows_and_the_published_ones():
    lra5, lra6 = TASK_TABLE.averages
    ours = {"listops": 50.0, "text": 60.0, "retrieval": 70.0, "image": 80.0, "pathfinder": 90.0, "pathx": None}
    assert average(lra5, ours) == (70.0, ())
    assert average(lra6, ours) == (None, ())  # no result of ours stands in
    for marker in ("fail", "not solved", "-"):  # a published Path-X without a number counts at chance
        assert average(lra6, {**ours, "pathx": marker}) == ((350.0 + 50.0) / 6, ("pathx",))
    assert average(lra5, {**ours, "text": "fail"}) == (None, ())  # Text has no chance value in the table
    assert average(lra6, {**ours, "pathx": 100.0}) == (75.0, ())


def test_the_board_prose_comes_from_the_table():
    assert averages_prose() == (
        "LRA avg (5, no Path-X) averages ListOps, Text, Retrieval, Image and Pathfinder; LRA avg (6) adds Path-X"
    )
    assert published_averages_prose() == (
        "LRA avg (5, no Path-X) needs all five tasks; in LRA avg (6), * marks a Path-X that failed, was not "
        "solved or has no published number, counted as chance (50 %) as the S4 and S5 papers count it"
    )
    disjoint = parse_task_table(table_with(lambda raw: raw["tasks"]["listops"].update(averages=["lra5"])), "t")
    assert averages_prose(disjoint).endswith("LRA avg (6) averages Text, Retrieval, Image, Pathfinder and Path-X")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda raw: raw["tasks"]["text"].update(averages=["lra7"]), "tasks.text.averages names ['lra7']"),
        (lambda raw: raw["tasks"]["wikitext103"].update(averages=["lra6"]), "only test/acc tasks are averaged"),
        (lambda raw: raw["tasks"]["text"].update(metric="test/f1"), "tasks.text.metric"),
        (lambda raw: raw["tasks"]["pathx"].pop("chance_source"), "chance and chance_source go together"),
        (lambda raw: raw["averages"].update(lra9={"title": "none"}), "averages ['lra9'] count no task"),
        (lambda raw: raw["tasks"]["text"].update(colour="red"), "tasks.text.colour"),
    ],
)
def test_a_bad_table_is_refused_naming_the_key(edit, message):
    with pytest.raises(TaskTableError, match=r"^edited: ") as err:
        parse_task_table(table_with(edit), "edited")
    assert message in str(err.value)
