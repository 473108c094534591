"""What a cell prints about its evaluation: one line per split, each number with its unit and a sensible
precision, in place of Lightning's tables of raw floats.

``metrics_line("test", {"test/acc": 0.140625, "test/energy_mj": 5.78e-05, ...})`` reads
``test: acc 14.06 %, loss 2.269, ACs 0, MACs 12.6 k, energy 57.8 nJ/example`` (rates and accuracies
as percentages, energies in the largest unit that keeps them >= 1, operation counts in k / M / G).
Per-layer values (``test/firing_rate/<layer>``) are left to ``result.json``; the line says how many.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from lra_snn.results.render import energy_unit

PERCENT_NAMES = ("acc", "firing_rate", "majority_rate", "chance_rate", "surrogate_agreement", "unconverged_fraction")
COUNT_NAMES = ("acs", "macs")
COUNT_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
CONVENTION = "_prf_convention"  # the PRF paper's energy convention (lra_snn.metrics.energy)
SHOWN_NAMES = {"acs": "ACs", "macs": "MACs", "energy_mj": "energy"}


def format_count(value: float) -> str:
    """An operation count with three significant digits and a k / M / G prefix (``12575`` -> ``12.6 k``)."""
    for scale, prefix in COUNT_PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.0f}"


def format_metric(name: str, value: float) -> str:
    """``value`` of the metric whose last name part is ``name``, with its unit."""
    if not math.isfinite(value):
        return str(value)
    base = name.replace(CONVENTION, "")
    if base == "energy_mj":
        unit, factor = energy_unit([abs(value)])
        return f"{value * factor:.3g} {unit}/example"
    if base in PERCENT_NAMES:
        return f"{100 * value:.2f} %"
    if base in COUNT_NAMES:
        return format_count(value)
    return f"{value:.4g}"


def shown_name(name: str) -> str:
    """How the line names metric ``name`` (``energy_prf_convention_mj`` -> ``energy (PRF convention)``)."""
    base = name.replace(CONVENTION, "")
    shown = SHOWN_NAMES.get(base, base).replace("_", " ")
    return f"{shown} (PRF convention)" if CONVENTION in name else shown


def metrics_line(split: str, metrics: Mapping[str, float]) -> str:
    """``<split>: name value, ...`` for the metrics of ``split`` (keys ``<split>/<name>``), in their order;
    deeper keys (per layer) are counted, not listed."""
    shown, deeper = [], 0
    for key, value in metrics.items():
        parts = key.split("/")
        if parts[0] != split:
            continue
        if len(parts) > 2 and parts[1] != "exact_neuron":
            deeper += 1
            continue
        name = " ".join(shown_name(part) for part in parts[1:])
        shown.append(f"{name} {format_metric(parts[-1], float(value))}")
    more = f" (+{deeper} per-layer values in result.json)" if deeper else ""
    return f"{split}: {', '.join(shown)}{more}"
