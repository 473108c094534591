"""One style (colour, marker, filled or open) per model name, the same in every figure whatever is drawn beside it.

The zoo (``lra_snn.config.zoo.models``) fixes the styles of its models by their place in it, so every
zoo model has its own (colour, marker) pair and a new zoo model gets one without any list here:

- the models of the baseline recipe family (``BASELINE_FAMILY``: S4D blocks with a real-valued
  activation or memoryless spikes) are black and greys with open markers;
- every other zoo model takes a filled marker in one of the nine colours of matplotlib's ``tab10``
  without its grey, and one of ten marker shapes, the shape being the second cue for readers who
  cannot tell two of the colours apart; colour and marker advance together and their counts are
  coprime, so no two of the first ninety such models share both;
- a name outside the zoo (a user's variant, a renamed model) takes a colour of that palette and a
  marker no zoo model uses, both chosen by the SHA-256 of its name: it never looks like a zoo model
  and keeps its style from one drawing to the next.

A neuron (bench figures) is drawn in the style of the first zoo model built on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from lra_snn.config import zoo

BASELINE_FAMILY = "s4"  # the recipe family of the non-spiking S4D baselines (conf/family/s4.yaml)
BASELINE_COLOURS = ("#000000", "#505050", "#8c8c8c")
BASELINE_MARKERS = ("o", "s", "D", "^")
# tab10 without its grey: nine colours; ten marker shapes (coprime with nine) as the second cue
SPIKING_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
)  # fmt: skip
SPIKING_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
OTHER_MARKERS = ("*", "p", "8", "H")  # for names outside the zoo only


@dataclass(frozen=True)
class ModelStyle:
    """How one model is drawn: its colour (hex), matplotlib marker, and whether the marker is filled."""

    colour: str
    marker: str
    filled: bool

    @property
    def face(self) -> str:
        """The marker face colour: the model's colour, or "none" for an open marker."""
        return self.colour if self.filled else "none"

    @property
    def baseline(self) -> bool:
        """Whether this is a baseline's style (open marker; the tested property that sets baselines apart)."""
        return not self.filled


def _cycled(index: int, colours: tuple[str, ...], markers: tuple[str, ...], filled: bool) -> ModelStyle:
    """The ``index``-th style of a palette: colour and marker advancing together."""
    return ModelStyle(colours[index % len(colours)], markers[index % len(markers)], filled)


@cache
def zoo_styles() -> dict[str, ModelStyle]:
    """The style of every zoo model: baselines and spiking models each numbered in zoo order."""
    names = zoo.models()
    baselines = [name for name in names if zoo.family(name) == BASELINE_FAMILY]
    spiking = [name for name in names if name not in baselines]
    styles = {name: _cycled(i, BASELINE_COLOURS, BASELINE_MARKERS, False) for i, name in enumerate(baselines)}
    styles |= {name: _cycled(i, SPIKING_COLOURS, SPIKING_MARKERS, True) for i, name in enumerate(spiking)}
    return styles


def _digest(name: str) -> int:
    """A stable integer from ``name`` (SHA-256; Python's ``hash`` of a string changes from one process to the next)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")


def model_style(name: str) -> ModelStyle:
    """The style of the model ``name``: its zoo style, else one chosen by the digest of the name."""
    styles = zoo_styles()
    if name in styles:
        return styles[name]
    digest = _digest(name)
    colour = SPIKING_COLOURS[digest % len(SPIKING_COLOURS)]
    return ModelStyle(colour, OTHER_MARKERS[(digest // len(SPIKING_COLOURS)) % len(OTHER_MARKERS)], True)


def drawing_order(name: str) -> tuple[int, str]:
    """Sort key of models in a figure: the baselines first, then the other models, each by name."""
    return (0 if model_style(name).baseline else 1, name)


@cache
def neuron_models() -> dict[str, str]:
    """Neuron -> the first zoo model (zoo order) built on it."""
    found: dict[str, str] = {}
    for name in zoo.models():
        neuron = zoo.neuron(name)
        if neuron is not None:
            found.setdefault(neuron, name)
    return found


def neuron_label(neuron: str) -> str:
    """``lif (lif_ssm)``: a neuron with the zoo model whose style it takes, or the bare name without one."""
    model = neuron_models().get(neuron)
    return f"{neuron} ({model})" if model is not None else neuron


def neuron_style(neuron: str) -> ModelStyle:
    """The style of the first zoo model built on ``neuron``; one by the digest of its name without one."""
    return model_style(neuron_models().get(neuron, neuron))
