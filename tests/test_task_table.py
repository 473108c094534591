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


def test_a_table_file_is_read_and_its_faults_name_the_file(tmp_path):
    from lra_snn.config.tasks import load_task_table

    good = tmp_path / "tasks.yaml"
    good.write_text(TASK_TABLE_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    loaded = load_task_table(good)
    assert loaded.names == TASK_TABLE.names and [a.name for a in loaded.averages] == ["lra5", "lra6"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("tasks: [unclosed", encoding="utf-8")
    with pytest.raises(TaskTableError, match=f"^{broken}: "):
        load_task_table(broken)
    with pytest.raises(TaskTableError, match="No such file"):
        load_task_table(tmp_path / "missing.yaml")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(table_with(lambda raw: raw["tasks"]["text"].update(metric="f1"))), encoding="utf-8")
    with pytest.raises(TaskTableError, match=f"^{wrong}: tasks.text.metric: "):
        load_task_table(wrong)


def test_every_problem_of_a_table_is_named_on_one_line():
    def two_faults(raw):
        raw["tasks"]["text"].update(metric="test/f1")
        raw["tasks"]["image"].update(title="")

    with pytest.raises(TaskTableError) as err:
        parse_task_table(table_with(two_faults), "edited")
    message = str(err.value)
    assert message.startswith("edited: tasks.text.metric: ") and "; tasks.image.title: " in message
    assert "\n" not in message and "errors.pydantic.dev" not in message
    with pytest.raises(TaskTableError, match=r"^listed: top level: "):
        parse_task_table(["listops"], "listed")


def test_the_prose_of_averages_that_repeat_or_stand_in_twice():
    from lra_snn.results.averages import _count_words

    def twin_and_chance(raw):
        raw["averages"]["lra6b"] = {"title": "Again"}
        for row in raw["tasks"].values():
            if "lra6" in row["averages"]:
                row["averages"] = [*row["averages"], "lra6b"]
        raw["tasks"]["image"].update(chance=10.0, chance_source="us")

    table = parse_task_table(table_with(twin_and_chance), "t")  # the same tasks twice: not "adds" nothing
    assert averages_prose(table).endswith("; Again averages ListOps, Text, Retrieval, Image, Pathfinder and Path-X")
    assert published_averages_prose(table).startswith(
        "in LRA avg (5, no Path-X), * marks a Image that failed, was not solved or has no published number, "
        "counted as chance (10 %) as us count it; in LRA avg (6), * marks a Image"
    )
    prose = published_averages_prose(table)
    assert prose.count("; ") == 4 and "as us count it; * marks a Path-X that failed" in prose
    assert [_count_words(n) for n in (5, 10, 11, 12)] == ["five", "ten", "11", "12"]


def test_averages_are_exact_on_the_numbers_as_written_and_round_half_up():
    from lra_snn.results.averages import two_decimals

    lra6 = TASK_TABLE.averages[1]
    spikingssms = {"listops": 60.23, "text": 80.41, "retrieval": 88.77, "image": 88.21, "pathfinder": 93.51}
    value, _ = average(lra6, {**spikingssms, "pathx": 94.82})  # 505.95 / 6 = 84.325 exactly
    assert two_decimals(value) == "84.33"  # the paper's own 84.33 (half up; a binary mean would read 84.32)
    assert [two_decimals(x) for x in (0.125, 2.675, 1.0, 99.994)] == ["0.13", "2.68", "1.00", "99.99"]
