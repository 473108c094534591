"""Your runs set against the shipped reference runs: one verdict per cell.

A cell of your runs is compared with the shipped cell of the same profile, model, task and identity
(the cell-defining settings, ``lra_snn.results.variants``), whatever the code versions (both are
named); when several shipped cells match the one with the most seeds counts, ties going to the newest.
Seeds that both cells ran are compared seed with seed (``SeedPair``): the difference is the mean of
the per-seed differences, and a seed whose metric equals the shipped one exactly is "identical" (the
same computation, bit for bit). Without a shared seed the means are compared. The difference is
given in shipped standard deviations (sample std, ddof=1) when the shipped cell has at least two
seeds and a non-zero spread, and is "n/a" otherwise. The verdict:

- ``reproduced exactly``: every seed of yours was shipped and equals the shipped value;
- ``reproduced``: |difference| <= max(``SIGMAS`` x shipped std, ``ABS_TOLERANCE``);
  with one shipped seed or a spread of 0 the shipped std counts as 0, so only the absolute
  tolerance applies;
- ``differs``: farther apart than that;
- ``config differs (...)``: shipped runs of this model and task exist, but none with these settings
  (the keys that differ from the closest one are named); no verdict on the numbers;
- ``no reference``: no shipped run of this model and task at this profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from lra_snn.results.board import Group, mean_and_std
from lra_snn.results.variants import differing_keys, variant_label

SIGMAS = 2.0
ABS_TOLERANCE = 1.0  # in the metric's unit: accuracy points (%), or perplexity


@dataclass(frozen=True)
class SeedPair:
    """One seed that both your cell and the shipped cell completed, with both metrics."""

    seed: int
    mine: float
    shipped: float

    @property
    def identical(self) -> bool:
        return self.mine == self.shipped


@dataclass(frozen=True)
class Comparison:
    """One cell of your runs beside the shipped one."""

    shipped: Group | None
    delta_std: float | None  # (yours - shipped) / shipped std; None when that std is undefined or 0
    delta_note: str  # why delta_std is None ("" when it is a number)
    verdict: str
    pairs: tuple[SeedPair, ...] = ()  # the seeds both completed, in seed order


def metric_by_seed(group: Group) -> dict[int, float]:
    """The test metric of each completed seed of ``group``."""
    return {run.seed: run.metric for run in group.with_status("completed") if run.metric is not None}


def seed_pairs(group: Group, shipped: Group) -> tuple[SeedPair, ...]:
    """The seeds that ``group`` and ``shipped`` both completed, each with both metrics."""
    mine, theirs = metric_by_seed(group), metric_by_seed(shipped)
    return tuple(SeedPair(seed, mine[seed], theirs[seed]) for seed in sorted(mine.keys() & theirs.keys()))


def _newest(group: Group) -> tuple[float, str]:
    return max(run.age for run in group.runs)


def _closest(group: Group, candidates: list[Group]) -> Group:
    """The candidate whose identity has the fewest keys differing from ``group``'s (ties: most seeds, newest)."""
    return min(
        candidates,
        key=lambda c: (len(differing_keys(group.identity, c.identity)), -len(c.values), -_newest(c)[0], c.config_hash),
    )


def compare(group: Group, shipped_cells: list[Group]) -> Comparison:
    """The verdict for ``group`` (with completed seeds) against the shipped cells of any model and task."""
    same_cell = [
        cell
        for cell in shipped_cells
        if (cell.profile, cell.model, cell.task) == (group.profile, group.model, group.task) and cell.values
    ]
    if not same_cell:
        return Comparison(None, None, "", "no reference")
    exact = [cell for cell in same_cell if cell.identity == group.identity]
    if not exact:
        closest = _closest(group, same_cell)
        return Comparison(closest, None, "", f"config differs ({variant_label(group.identity, closest.identity)})")
    shipped = max(exact, key=lambda cell: (len(cell.values), _newest(cell)))
    pairs = seed_pairs(group, shipped)
    mine, _ = mean_and_std(group.values)
    theirs, spread = mean_and_std(shipped.values)
    difference = sum(p.mine - p.shipped for p in pairs) / len(pairs) if pairs else mine - theirs
    if spread is None:
        delta, note, std = None, "n/a (1 shipped seed)", 0.0
    elif spread == 0.0:
        delta, note, std = None, "n/a (shipped std 0)", 0.0
    else:
        delta, note, std = difference / spread, "", spread
    if len(pairs) == len(group.values) and all(pair.identical for pair in pairs):
        verdict = "reproduced exactly"
    elif abs(difference) <= max(SIGMAS * std, ABS_TOLERANCE):
        verdict = "reproduced"
    else:
        verdict = "differs"
    return Comparison(shipped, delta, note, verdict, pairs)


def seeds_text(comparison: Comparison) -> str:
    """The seed-by-seed comparison in words: ``3 of 3 identical``, ``seed 1 identical, seed 2 +0.40``, or
    ``no seed in common (means compared)``."""
    pairs = comparison.pairs
    if comparison.shipped is None:
        return "-"
    if not pairs:
        return "no seed in common (means compared)"
    if all(pair.identical for pair in pairs):
        return f"{len(pairs)} of {len(pairs)} identical"
    return ", ".join(
        f"seed {p.seed} identical" if p.identical else f"seed {p.seed} {p.mine - p.shipped:+.2f}" for p in pairs
    )
