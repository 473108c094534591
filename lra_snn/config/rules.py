"""What a config value may be: rules with a check (``accepts``) and a description for the error message.

The train config's keys (``lra_snn.training.validate``) and each neuron's constructor options
(``Neuron.option_rules``, ``lra_snn.neurons.base``) are checked by the same rules, so a bad value is
named the same way before a run is built and when a neuron is built in code: ``tau=0.5: expected a
number >= 1``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class Rule(Protocol):
    """What a key accepts: ``accepts(value)``, and ``describe()`` for the error message."""

    def accepts(self, value: object) -> bool: ...

    def describe(self) -> str: ...


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{_number_text(low)}, {_number_text(high)}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {_number_text(low)}"
    if high is not None:
        return f" {'<' if high_open else '<='} {_number_text(high)}"
    return ""


def _within(value: float, low: float | None, high: float | None, low_open: bool, high_open: bool) -> bool:
    above = low is None or (value > low if low_open else value >= low)
    below = high is None or (value < high if high_open else value <= high)
    return above and below


@dataclass(frozen=True)
class Integer:
    """An int (not a bool, not a float) in ``[low, high]``; ``even``: a multiple of 2."""

    low: int | None = None
    high: int | None = None
    even: bool = False

    def accepts(self, value: object) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and _within(value, self.low, self.high, False, False)
            and not (self.even and value % 2)
        )

    def describe(self) -> str:
        return f"{'an even' if self.even else 'an'} integer{_range_text(self.low, self.high, False, False)}"


@dataclass(frozen=True)
class Number:
    """An int or float (not a bool, not NaN) between ``low`` and ``high``; ``*_open``: that bound excluded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def accepts(self, value: object) -> bool:
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and not math.isnan(value)
            and _within(value, self.low, self.high, self.low_open, self.high_open)
        )

    def describe(self) -> str:
        return f"a number{_range_text(self.low, self.high, self.low_open, self.high_open)}"


@dataclass(frozen=True)
class Flag:
    """true or false."""

    def accepts(self, value: object) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class OneOf:
    """One of ``values``, type included (``1`` is not ``True``, ``32`` is not ``"32"``)."""

    values: tuple[object, ...]

    def accepts(self, value: object) -> bool:
        return any(type(value) is type(allowed) and value == allowed for allowed in self.values)

    def describe(self) -> str:
        shown = [show(v) for v in self.values]
        return shown[0] if len(shown) == 1 else f"one of {', '.join(shown)}"


@dataclass(frozen=True)
class ListOf:
    """A non-empty list whose items all satisfy ``item``; ``length``: exactly that many;
    ``increasing``: each item larger than the one before."""

    item: Rule
    length: int | None = None
    increasing: bool = False

    def accepts(self, value: object) -> bool:
        if not isinstance(value, list) or not value or (self.length is not None and len(value) != self.length):
            return False
        return all(self.item.accepts(v) for v in value) and not (
            self.increasing and any(a >= b for a, b in itertools.pairwise(value))
        )

    def describe(self) -> str:
        size = f"{self.length} " if self.length is not None else ("increasing " if self.increasing else "")
        return f"a list of {size}values, each {self.item.describe()}"


@dataclass(frozen=True)
class AnyOf:
    """A value that one of ``options`` accepts."""

    options: tuple[Rule, ...]

    def accepts(self, value: object) -> bool:
        return any(option.accepts(value) for option in self.options)

    def describe(self) -> str:
        return " or ".join(option.describe() for option in self.options)


NULL = OneOf((None,))
SIZE = Integer(low=1)
SIZE_OR_NULL = AnyOf((SIZE, NULL))
FRACTION = Number(0.0, 1.0, low_open=True, high_open=True)
DROPOUT = Number(0.0, 1.0, high_open=True)
POSITIVE = Number(0.0, low_open=True)
NON_NEGATIVE = Number(0.0)


def show(value: object) -> str:
    """A value as a config would spell it: null for None, strings quoted."""
    return "null" if value is None else repr(value)


def rule_problems(values: Mapping[str, object], rules: Mapping[str, Rule]) -> list[str]:
    """``name=value: expected ...`` for each of ``values`` that its rule in ``rules`` refuses."""
    return [
        f"{name}={show(value)}: expected {rules[name].describe()}"
        for name, value in values.items()
        if name in rules and not rules[name].accepts(value)
    ]
