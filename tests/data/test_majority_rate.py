"""The majority-class rate a run records is the test split's, counted from the batches the test
loader serves (not from the train split, whose class shares differ in this fixture)."""

from __future__ import annotations

from collections import Counter

import torch
from hydra.utils import instantiate


def _label_shares(loader) -> dict[int, float]:
    counts: Counter[int] = Counter()
    for batch in loader:
        counts.update(batch["labels"].tolist())
    total = sum(counts.values())
    return {label: count / total for label, count in counts.items()}


def test_majority_rate_is_the_test_splits_largest_class_share(compose_train):
    datamodule = instantiate(compose_train("profile=tiny").data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    torch.manual_seed(0)
    test_rate = max(_label_shares(datamodule.test_dataloader()).values())
    train_rate = max(_label_shares(datamodule.train_dataloader()).values())
    assert abs(test_rate - train_rate) > 0.01  # the fixture tells the two splits apart
    assert datamodule.summary_metrics()["test/majority_rate"] == test_rate


def test_chance_rate_is_one_over_the_number_of_classes(compose_train):
    datamodule = instantiate(compose_train("profile=tiny").data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert datamodule.n_classes == 10  # ListOps: the results 0-9
    assert datamodule.summary_metrics()["test/chance_rate"] == 0.1
