"""The rules a config value is checked by (lra_snn.config.rules): what each accepts, at its bounds, and how it
describes itself in an error message."""

from __future__ import annotations

import math

import pytest

from lra_snn.config.rules import (
    DROPOUT,
    FRACTION,
    NULL,
    POSITIVE,
    SIZE,
    SIZE_OR_NULL,
    AnyOf,
    Flag,
    Integer,
    ListOf,
    Number,
    OneOf,
    rule_problems,
)

DESCRIPTIONS = [
    (SIZE, "an integer >= 1"),
    (Integer(2, even=True), "an even integer >= 2"),
    (Integer(high=5), "an integer <= 5"),
    (Integer(0, 5), "an integer in [0, 5]"),
    (Integer(), "an integer"),
    (FRACTION, "a number in (0, 1)"),
    (DROPOUT, "a number in [0, 1)"),
    (POSITIVE, "a number > 0"),
    (Number(0.5), "a number >= 0.5"),
    (Number(high=2.0), "a number <= 2"),
    (Number(high=1.5, high_open=True), "a number < 1.5"),
    (Number(), "a number"),
    (Flag(), "true or false"),
    (OneOf(("a", "b")), "one of 'a', 'b'"),
    (NULL, "null"),
    (SIZE_OR_NULL, "an integer >= 1 or null"),
    (ListOf(Number(), length=2), "a list of 2 values, each a number"),
    (ListOf(SIZE, increasing=True), "a list of increasing values, each an integer >= 1"),
]


@pytest.mark.parametrize(("rule", "text"), DESCRIPTIONS)
def test_each_rule_describes_what_it_accepts(rule, text):
    assert rule.describe() == text


ACCEPTS = [
    (Integer(0, 5), [0, 5, 3], [-1, 6, True, 2.0, "3", None]),
    (Integer(2, even=True), [2, 4], [3, 0]),
    (Integer(high=5), [-7, 5], [6]),
    (DROPOUT, [0, 0.0, 0.999], [1, 1.0, -0.1, math.nan, False]),
    (FRACTION, [0.5], [0.0, 1.0]),
    (Number(high=2.0), [2.0, -3], [2.1]),
    (Number(high=1.5, high_open=True), [1.49], [1.5]),
    (Flag(), [True, False], [1, 0, "true", None]),
    (OneOf((1, "a", None)), [1, "a", None], [True, 1.0, "1"]),
    (SIZE_OR_NULL, [1, None], [0, "x"]),
    (ListOf(SIZE, increasing=True), [[1, 2], [3]], [[2, 2], [2, 1], [], (1, 2), "12", [0, 1]]),
    (ListOf(Number(), length=2), [[0.9, 0.99]], [[0.9], [0.9, 0.99, 0.999]]),
    (AnyOf((SIZE, OneOf(("auto",)))), [3, "auto"], [0, "all"]),
]


@pytest.mark.parametrize(("rule", "good", "bad"), ACCEPTS)
def test_each_rule_accepts_its_values_and_refuses_the_others(rule, good, bad):
    assert [value for value in good if not rule.accepts(value)] == []
    assert [value for value in bad if rule.accepts(value)] == []


def test_rule_problems_names_each_refused_value_in_config_spelling():
    rules = {"tau": Number(1.0), "name": OneOf(("lif",)), "k": SIZE}
    values = {"tau": 0.5, "name": "prf", "k": 2, "unruled": -1}
    assert rule_problems(values, rules) == ["tau=0.5: expected a number >= 1", "name='prf': expected 'lif'"]
    assert rule_problems({"k": None}, rules) == ["k=null: expected an integer >= 1"]
