"""One style per model name in every figure: zoo models by their place in the zoo (baselines of the S4
family open and grey, the others filled and coloured, no two alike), other names by the SHA-256 of the
name, neurons in the style of their zoo model."""

from __future__ import annotations

import pytest
from matplotlib.colors import to_rgb

from lra_snn.cli import figure_style
from lra_snn.cli.figure_style import ModelStyle, model_style, neuron_label, neuron_style
from lra_snn.config import zoo


@pytest.fixture
def fresh_styles():
    """Clear the cached zoo styles before and after a test that changes the zoo."""
    figure_style.zoo_styles.cache_clear()
    figure_style.neuron_models.cache_clear()
    yield
    figure_style.zoo_styles.cache_clear()
    figure_style.neuron_models.cache_clear()


def is_grey(colour: str) -> bool:
    red, green, blue = to_rgb(colour)
    return red == green == blue


def test_zoo_models_keep_their_styles():
    assert model_style("s4d") == ModelStyle("#8c8c8c", "D", filled=False)
    assert model_style("binary_s4d") == ModelStyle("#000000", "o", filled=False)
    assert model_style("dsn_ssm") == ModelStyle("#1f77b4", "o", filled=True)
    assert model_style("lif_ssm") == ModelStyle("#ff7f0e", "s", filled=True)
    assert model_style("spikingssm_lif") == ModelStyle("#17becf", ">", filled=True)


def test_no_two_zoo_models_share_colour_and_marker():
    styles = [(model_style(name).colour, model_style(name).marker) for name in zoo.models()]
    assert len(set(styles)) == len(zoo.models()) == 12


def test_baselines_are_open_and_grey_and_every_other_zoo_model_is_filled_and_coloured():
    baselines = [name for name in zoo.models() if model_style(name).baseline]
    assert baselines == ["binary_s4d", "binary_s4d_gsu", "s4d"]
    assert all(zoo.family(name) == figure_style.BASELINE_FAMILY for name in baselines)
    for name in zoo.models():
        style = model_style(name)
        assert style.face == ("none" if style.baseline else style.colour)
        assert is_grey(style.colour) == style.baseline, name


def test_a_new_zoo_model_gets_its_own_style_without_any_list_to_edit(monkeypatch, fresh_styles):
    models, family = zoo.models, zoo.family
    monkeypatch.setattr(zoo, "models", lambda *conf: (*models(*conf), "zeta_ssm"))
    monkeypatch.setattr(zoo, "family", lambda name, *conf: "spiking_s4d" if name == "zeta_ssm" else family(name, *conf))
    new = model_style("zeta_ssm")
    assert new == ModelStyle("#1f77b4", "h", filled=True)  # the tenth spiking model: colour 9 % 9, marker 9 % 10
    others = {(model_style(name).colour, model_style(name).marker) for name in models()}
    assert (new.colour, new.marker) not in others


def test_a_name_outside_the_zoo_has_a_stable_style_unlike_any_zoo_model():
    assert model_style("dsn_in_lif_slot") == ModelStyle("#ff7f0e", "8", filled=True)  # SHA-256, not hash()
    assert model_style("my_variant") == ModelStyle("#9467bd", "H", filled=True)
    zoo_markers = {model_style(name).marker for name in zoo.models()}
    assert model_style("dsn_in_lif_slot").marker not in zoo_markers


def test_neurons_take_the_style_of_their_zoo_model():
    assert neuron_style("lif") == model_style("lif_ssm")
    assert neuron_style("heaviside") == model_style("binary_s4d")
    assert neuron_label("refractory_lif") == "refractory_lif (spike_ssm)"
    assert neuron_label("no_such_neuron") == "no_such_neuron"
    assert neuron_style("no_such_neuron") == model_style("no_such_neuron")


def test_baselines_come_first_in_a_figure():
    names = ["spike_ssm", "s4d", "dsn_in_lif_slot", "binary_s4d"]
    assert sorted(names, key=figure_style.drawing_order) == ["binary_s4d", "s4d", "dsn_in_lif_slot", "spike_ssm"]
