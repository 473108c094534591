"""The statistics the figures draw: the Wilson interval, the test-set size a recorded config fixes (and that
it agrees with every shipped run's accuracy), the did-not-learn rule and the seed count's wording."""

from __future__ import annotations

import pytest

from lra_snn.cli.figure_stats import count_test_examples, did_not_learn, seeds_label, wilson_interval
from lra_snn.config import PROJECT_ROOT
from lra_snn.results.runs import load_runs


def test_wilson_interval_of_40_in_100():
    low, high = wilson_interval(0.4, 100)
    assert (round(low, 4), round(high, 4)) == (0.3094, 0.4980)


@pytest.mark.parametrize(
    ("proportion", "n", "expected"),
    [(0.0, 10, (0.0, 0.2775)), (1.0, 10, (0.7225, 1.0)), (0.465, 200, (0.3972, 0.5341))],
)
def test_wilson_interval_stays_in_zero_to_one(proportion, n, expected):
    assert tuple(round(bound, 4) for bound in wilson_interval(proportion, n)) == expected


def test_wilson_interval_needs_a_trial_and_a_proportion():
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(0.5, 0)
    with pytest.raises(ValueError, match=r"lies in \[0, 1\]"):
        wilson_interval(40.0, 100)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"n_test": 1000}, 1000),
        ({"n_test": None, "source": "release"}, None),
        ({"source": "generate", "n_images": 2000, "val_fraction": 0.1, "test_fraction": 0.1}, 200),
        ({"source": "generate", "n_images": 40, "val_fraction": 0.1, "test_fraction": 0.1}, 4),
        ({"source": "release", "n_images": 2000, "val_fraction": 0.1, "test_fraction": 0.1}, None),
        ({"n_test": True}, None),
    ],
)
def test_test_examples_from_the_recorded_config(data, expected):
    assert count_test_examples({"data": data}) == expected


def test_no_config_no_count():
    assert count_test_examples({}) is None
    assert count_test_examples({"data": "listops"}) is None


def test_the_count_fits_every_shipped_accuracy():
    """Each completed shipped run's accuracy times its test-set size is a whole number of examples."""
    runs, problems = load_runs(PROJECT_ROOT / "results" / "reference-runs")
    assert not problems
    checked = 0
    for run in runs:
        n = count_test_examples(run.config)
        if run.status == "completed" and run.metric is not None and n is not None:
            correct = run.metric / 100.0 * n
            assert correct == pytest.approx(round(correct), abs=1e-3), (run.path, n, run.metric)
            checked += 1
    assert checked > 0


def test_did_not_learn_is_not_above_the_majority_rate():
    assert did_not_learn(13.0, 13.0) and did_not_learn(10.0, 13.0)
    assert not did_not_learn(13.1, 13.0)


def test_seed_count_wording():
    assert [seeds_label(n) for n in (1, 2, 3)] == ["1 seed", "2 seeds", "3 seeds"]


def test_one_trial_has_an_interval_and_proportions_above_one_are_refused():
    from lra_snn.cli.figure_stats import wilson_interval

    low, high = wilson_interval(1.0, 1)
    assert 0.0 < low < 0.5 and high == 1.0
    with pytest.raises(ValueError, match=r"a proportion lies in \[0, 1\], got 1.5"):
        wilson_interval(1.5, 10)
