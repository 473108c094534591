"""Spiking neurons: sequential reference, parallel training form and step form for each.

``build_neuron(name, d_model, **kwargs)`` makes one from its registry name; the names are
those used in configs (``model/neuron=<name>``). Adding a neuron: a ``Neuron`` subclass in its own
file (the three forms and ``macs_per_step``, ``lra_snn.neurons.base``), one line in ``NEURONS``
below and ``conf/model/neuron/<name>.yaml``.
"""

from __future__ import annotations

import importlib
import inspect

from lra_snn.neurons.base import Neuron

# registry name -> "module:Class" (imported on use, so one family's import cost is paid only when used)
NEURONS: dict[str, str] = {
    "lif": "lra_snn.neurons.lif:DecoupledResetLIF",
    "lif_hard": "lra_snn.neurons.lif_hard:HardResetLIF",
    "prf": "lra_snn.neurons.prf:PRF",
    "refractory_lif": "lra_snn.neurons.refractory:RefractoryLIF",
    "psn": "lra_snn.neurons.psn:PSN",
    "masked_psn": "lra_snn.neurons.psn:MaskedPSN",
    "sliding_psn": "lra_snn.neurons.psn:SlidingPSN",
    "dsn": "lra_snn.neurons.dsn:DSN",
    "heaviside": "lra_snn.neurons.threshold:ThresholdSpike",
    "sdn": "lra_snn.neurons.sdn:SurrogateDynamicNeuron",
}


def neuron_class(name: str) -> type[Neuron]:
    """The class registered as ``name``; a clear error lists the registered names, and a
    ``TypeError`` says what is missing when the entry is not a complete ``Neuron`` subclass."""
    if name not in NEURONS:
        raise KeyError(f"unknown neuron {name!r}; registered neurons: {', '.join(sorted(NEURONS))}")
    module, attribute = NEURONS[name].split(":")
    cls = getattr(importlib.import_module(module), attribute)
    if not (isinstance(cls, type) and issubclass(cls, Neuron)):
        raise TypeError(f"neuron {name!r} is registered as {NEURONS[name]}, which is not a Neuron subclass")
    if inspect.isabstract(cls):
        raise TypeError(
            f"neuron {name!r} ({NEURONS[name]}) does not implement "
            f"{', '.join(sorted(cls.__abstractmethods__))} of the Neuron interface (lra_snn.neurons.base)"
        )
    return cls


def build_neuron(name: str, d_model: int, **kwargs) -> Neuron:
    """Instantiate the neuron ``name`` for ``d_model`` channels with its config ``kwargs``."""
    return neuron_class(name)(d_model=d_model, **kwargs)


__all__ = ["NEURONS", "Neuron", "build_neuron", "neuron_class"]
