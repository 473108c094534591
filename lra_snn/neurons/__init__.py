"""Spiking neurons: sequential reference, parallel training form and step form for each.

``build_neuron(name, d_model, **kwargs)`` makes one from its registry name; the names are
those used in configs (``model/neuron=<name>``).
"""

from __future__ import annotations

import importlib

from lra_snn.neurons.base import Neuron

# registry name -> "module:Class" (imported on use, so one family's import cost is paid only when used)
NEURONS: dict[str, str] = {
    "lif": "lra_snn.neurons.lif:DecoupledResetLIF",
    "prf": "lra_snn.neurons.prf:PRF",
    "refractory_lif": "lra_snn.neurons.refractory:RefractoryLIF",
    "psn": "lra_snn.neurons.psn:PSN",
    "masked_psn": "lra_snn.neurons.psn:MaskedPSN",
    "sliding_psn": "lra_snn.neurons.psn:SlidingPSN",
    "dsn": "lra_snn.neurons.dsn:DSN",
}


def neuron_class(name: str) -> type[Neuron]:
    """The class registered as ``name``; a clear error lists the registered names."""
    if name not in NEURONS:
        raise KeyError(f"unknown neuron {name!r}; registered neurons: {', '.join(sorted(NEURONS))}")
    module, cls = NEURONS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_neuron(name: str, d_model: int, **kwargs) -> Neuron:
    """Instantiate the neuron ``name`` for ``d_model`` channels with its config ``kwargs``."""
    return neuron_class(name)(d_model=d_model, **kwargs)


__all__ = ["NEURONS", "Neuron", "build_neuron", "neuron_class"]
