"""Zoo builders used as config targets (``_target_`` in ``conf/model/neuron/``).

``fixed_length_neuron`` builds a fixed-length neuron (PSN, masked PSN; docs/neurons.md, section 4)
for ``T`` steps from the data and wraps it in ``lra_snn.neurons.fixed_length.PadToLength``, so it
runs on the shorter batches the data modules produce.
"""

from __future__ import annotations

from typing import Any

from lra_snn.neurons import build_neuron
from lra_snn.neurons.fixed_length import PadToLength


def fixed_length_neuron(name: str, d_model: int, T: int, **kwargs: Any) -> PadToLength:
    """The registry neuron ``name`` built for ``T`` steps, run on any length up to T by zero padding."""
    return PadToLength(build_neuron(name, d_model, T=T, **kwargs))
