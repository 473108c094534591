"""What a cell prints about its evaluation: each number with its unit and a sensible precision."""

from __future__ import annotations

import math

from lra_snn.training.report import format_count, format_metric, metrics_line, shown_name


def test_counts_get_a_prefix_and_three_significant_digits():
    assert [format_count(v) for v in (0, 999, 1028, 12575, 6.654e6, 2.5e9)] == [
        "0",
        "999",
        "1.03 k",
        "12.6 k",
        "6.65 M",
        "2.5 G",
    ]


def test_each_metric_has_its_unit():
    assert format_metric("acc", 0.140625) == "14.06 %"
    assert format_metric("firing_rate", 0.1681937) == "16.82 %"
    assert format_metric("surrogate_agreement", 0.99972) == "99.97 %"
    assert format_metric("energy_mj", 5.7845e-05) == "57.8 nJ/example"
    assert format_metric("energy_mj", 0.0123) == "12.3 uJ/example"
    assert format_metric("energy_mj", 2.5) == "2.5 mJ/example"
    assert format_metric("energy_prf_convention_mj", 5.3452e-05) == "53.5 nJ/example"
    assert format_metric("macs_prf_convention", 11620.0) == "11.6 k"
    assert format_metric("loss", 2.268526315689087) == "2.269"
    assert format_metric("ppl", 123.456) == "123.5"
    assert format_metric("loss", math.nan) == "nan"


def test_shown_names():
    assert [shown_name(n) for n in ("acs", "energy_mj", "energy_prf_convention_mj", "firing_rate")] == [
        "ACs",
        "energy",
        "energy (PRF convention)",
        "firing rate",
    ]


def test_a_line_per_split_with_per_layer_values_counted():
    metrics = {
        "val/loss": 2.3225,
        "val/acc": 0.109375,
        "test/loss": 2.2713,
        "test/acc": 0.140625,
        "test/macs": 6654.0,
        "test/energy_mj": 3.15336e-05,
        "test/firing_rate": 0.16819,
        "test/firing_rate/encoder.blocks.0.layer.neuron": 0.2,
        "test/firing_rate/encoder.blocks.1.layer.neuron": 0.1,
        "test/exact_neuron/acc": 0.41,
    }
    assert metrics_line("val", metrics) == "val: loss 2.322, acc 10.94 %"
    assert metrics_line("test", metrics) == (
        "test: loss 2.271, acc 14.06 %, MACs 6.65 k, energy 31.5 nJ/example, firing rate 16.82 %, "
        "exact neuron acc 41.00 % (+2 per-layer values in result.json)"
    )


def test_a_count_on_a_prefix_boundary_takes_the_prefix():
    assert [format_count(v) for v in (1000, 1e6, 1e9)] == ["1 k", "1 M", "1 G"]
