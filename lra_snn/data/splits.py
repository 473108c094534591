"""Choosing the examples of each split: seeded hold-outs, class-balanced subsets, seeded partitions."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

SPLITS = ("train", "val", "test")


def check_split_sizes(sizes: Mapping[str, int | None], whole: bool) -> None:
    """``ValueError`` naming the config key ``data.n_<split>`` of a split size below 1 in ``sizes`` (split ->
    size), before anything is built: an empty split can be neither trained on nor scored. ``whole``: the
    module also takes None (the whole split), which the message then offers."""
    for split, size in sizes.items():
        if size is not None and size < 1:
            alternative = f" or data.n_{split}=null (the whole split)" if whole else ""
            raise ValueError(
                f"data.n_{split}={size}: every split needs at least one example; set data.n_{split} to a positive "
                f"count, e.g. data.n_{split}=64{alternative}"
            )


def balanced_subset(
    labels: np.ndarray, n: int | None, seed: int, n_classes: int, name: str = "the split"
) -> np.ndarray:
    """Sorted indices of a seeded subset of ``n`` examples, as close to class-balanced as ``n`` allows.

    Each class gets ``n // n_classes`` examples, the first ``n % n_classes`` classes one more;
    ``n = None`` selects everything. A class with too few examples is an error naming ``name``.
    """
    labels = np.asarray(labels)
    if n is None:
        return np.arange(len(labels))
    if not 0 < n <= len(labels):
        raise ValueError(f"a subset of {n} examples of {name} needs 1 <= n <= {len(labels)} (its size)")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(n_classes):
        quota = n // n_classes + (label < n % n_classes)
        members = np.flatnonzero(labels == label)
        if len(members) < quota:
            raise ValueError(
                f"a class-balanced subset of {n} examples needs {quota} of class {label}, "
                f"but {name} holds only {len(members)}; ask for fewer examples"
            )
        chosen.append(rng.choice(members, size=quota, replace=False))
    return np.sort(np.concatenate(chosen))


def holdout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(kept, held_out)`` indices of ``n`` examples, ``fraction`` of them held out.

    Follows the S4 code base's validation split (``torch.utils.data.random_split`` with a generator
    seeded by ``seed``: a permutation whose first ``int(n * (1 - fraction))`` entries are kept), so
    seed 42 and fraction 0.1 give the same CIFAR-10 validation images as S4.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must lie strictly between 0 and 1, got {fraction}")
    n_kept = int(n * (1.0 - fraction))
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(permutation[:n_kept]), np.sort(permutation[n_kept:])


def partition_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Train / val / test sizes of ``n`` examples (val and test rounded, train the rest); each at least 1."""
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    sizes = (n - n_val - n_test, n_val, n_test)
    if min(sizes) < 1:
        raise ValueError(
            f"{n} examples split {val_fraction:g}/{test_fraction:g} leave an empty split {sizes}; "
            f"use more examples or larger fractions"
        )
    return sizes


def partition(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Indices of each split: consecutive parts of one seeded permutation of ``range(n)`` (numpy's PCG64)."""
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum((0, *partition_sizes(n, val_fraction, test_fraction)))
    return {split: order[bounds[i] : bounds[i + 1]] for i, split in enumerate(SPLITS)}
