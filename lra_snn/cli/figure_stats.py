"""The statistics the figures and tables draw: binomial intervals, the size of a test set, the seed count,
and the rule that marks a cell that did not learn.

- ``wilson_interval``: the 95 % Wilson score interval of a proportion (an accuracy) measured on ``n``
  examples. The seeds of one cell are evaluated on one test set, so their examples are never pooled:
  a cell's interval is that of its mean accuracy over its ``n`` test examples.
- ``count_test_examples``: result records hold no count of test examples; the recorded config fixes it.
  ``data.n_test`` is the exact size of the test split where a task takes it (the data modules
  refuse a subset they cannot draw), and a generated image set (``data.source=generate``) is
  partitioned by ``lra_snn.data.splits.partition_sizes`` from ``n_images`` and the two fractions.
  Any other config (a release split taken whole) gives None: the figure then draws the seed spread only.
- ``did_not_learn``: a cell did not learn when its mean test accuracy over seeds is not above the
  majority-class rate of the test split, i.e. it does no better than always answering the most
  frequent class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lra_snn.data.splits import partition_sizes

Z_95 = 1.959963984540054  # the standard normal quantile at 0.975


def wilson_interval(proportion: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (low, high) of ``proportion`` (a fraction) observed on ``n`` trials (95 %)."""
    if n < 1:
        raise ValueError(f"a binomial interval needs at least one trial, got n = {n}")
    if not 0.0 <= proportion <= 1.0:
        raise ValueError(f"a proportion lies in [0, 1], got {proportion}")
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (proportion + z2 / (2 * n)) / denominator
    half = z * math.sqrt(proportion * (1.0 - proportion) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def count_test_examples(config: Mapping[str, Any]) -> int | None:
    """The number of test examples a run with the recorded ``config`` was evaluated on (module docstring), or None."""
    data = config.get("data")
    if not isinstance(data, Mapping):
        return None
    n_test = data.get("n_test")
    if isinstance(n_test, int) and not isinstance(n_test, bool):
        return n_test
    n_images, val_fraction, test_fraction = (data.get(key) for key in ("n_images", "val_fraction", "test_fraction"))
    if (
        data.get("source") == "generate"
        and isinstance(n_images, int)
        and isinstance(val_fraction, float)
        and isinstance(test_fraction, float)
    ):
        return partition_sizes(n_images, val_fraction, test_fraction)[2]
    return None


def did_not_learn(accuracy: float, majority_rate: float) -> bool:
    """Whether a mean test accuracy is not above the majority-class rate (both in the same unit)."""
    return accuracy <= majority_rate


def seeds_label(count: int) -> str:
    """``1 seed``, ``3 seeds``."""
    return f"{count} seed" + ("" if count == 1 else "s")
