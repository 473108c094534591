"""Surrogate neurons against the exact neurons they stand for: the agreement of their spikes over the
valid steps of a test pass, the second test pass with the exact neurons, and lra-eval's swap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from lra_snn.cli import eval as eval_cli
from lra_snn.training.cell import run
from lra_snn.training.surrogate_agreement import SurrogateAgreement, exact_neuron_metrics, exact_neurons, surrogates


class FlipsFirstStep(nn.Module):
    """Fires ``x > 0`` but flips every channel's first step; its exact neuron fires ``x > 0``."""

    use_exact = False

    def exact_spikes(self, x: torch.Tensor) -> torch.Tensor:
        return (x > 0).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes = self.exact_spikes(x)
        if not self.use_exact:
            spikes[:, 0] = 1 - spikes[:, 0]
        return spikes


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.plain, self.second = FlipsFirstStep(), nn.Identity(), FlipsFirstStep()
        self.logged: dict[str, float] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x) - 0.5)

    def log(self, name: str, value: float) -> None:
        self.logged[name] = value


def test_agreement_counts_the_valid_steps_of_each_sequence_layer_by_layer():
    model, callback = Model(), SurrogateAgreement()
    assert list(surrogates(model)) == ["first", "second"]
    callback.on_test_epoch_start(None, model)
    x = torch.randn(2, 5, 3)
    callback.on_test_batch_start(None, model, {"lengths": torch.tensor([5, 2])}, 0)
    model(x)
    callback.on_test_epoch_end(None, model)
    # one flipped step per channel and sequence: 7 valid steps x 3 channels, 2 x 3 of them wrong
    assert model.logged == pytest.approx(
        {"test/surrogate_agreement/first": 15 / 21, "test/surrogate_agreement/second": 15 / 21,
         "test/surrogate_agreement": 30 / 42}
    )  # fmt: skip
    model(x)  # the hooks are gone after the test pass
    assert len(model.logged) == 3


@pytest.mark.parametrize("lengths", [None, torch.tensor([5, 2, 4])], ids=["no batch", "lengths of another batch"])
def test_agreement_counts_every_step_when_the_lengths_do_not_describe_the_input(lengths):
    model, callback = Model(), SurrogateAgreement()
    callback.on_test_epoch_start(None, model)
    if lengths is not None:
        callback.on_test_batch_start(None, model, {"lengths": lengths}, 0)
    model(torch.randn(2, 5, 3))
    callback.on_test_epoch_end(None, model)
    assert model.logged["test/surrogate_agreement"] == pytest.approx(24 / 30)  # 2 x 3 flipped of 2 x 5 x 3


class RecordingTrainer:
    """``test()`` as Lightning's, returning fixed metrics and recording how it was called."""

    def __init__(self, model: Model) -> None:
        self.model, self.calls = model, []

    def test(self, task, **kwargs):
        self.calls.append((task, kwargs, self.model.first.use_exact))
        return [{"test/acc": 0.25, "test/loss": 1.5, "test/other": 9.0}]


def test_the_exact_neuron_pass_tests_the_checkpoint_with_exact_neurons():
    model = Model()
    trainer = RecordingTrainer(model)
    assert exact_neuron_metrics(trainer, model, "data", "best.ckpt") == {
        "test/exact_neuron/acc": 0.25,
        "test/exact_neuron/loss": 1.5,
    }
    assert trainer.calls == [(model, {"datamodule": "data", "ckpt_path": "best.ckpt", "verbose": False}, True)]
    assert not model.first.use_exact
    assert exact_neuron_metrics(RecordingTrainer(model), nn.Linear(2, 2), "data", "best.ckpt") == {}


def test_exact_neurons_switch_for_a_block_only():
    model = Model()
    with exact_neurons(model) as found:
        assert found == 2 and model.first.use_exact and model.second.use_exact
    assert not model.first.use_exact and not model.second.use_exact
    with exact_neurons(nn.Linear(2, 2)) as found:
        assert found == 0


def test_lra_eval_swaps_the_neurons_of_a_spikingssm_checkpoint(compose_train, capsys):
    cfg = compose_train("model=spikingssm", "profile=tiny", "trainer.max_epochs=1", "trainer.deterministic=true")
    record = run(cfg)
    checkpoint = record["best_checkpoint"] or str(Path(cfg.paths.run_dir) / "checkpoints" / "last.ckpt")
    results = {}
    for exact in ("false", "true"):
        capsys.readouterr()
        assert eval_cli.main([f"ckpt_path={checkpoint}", f"exact_neurons={exact}"]) == 0
        results[exact] = json.loads(capsys.readouterr().out)
    assert results["true"]["exact_neurons"] == "true"
    metrics = record["metrics"]
    assert results["false"]["metrics"]["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert results["true"]["metrics"]["test/acc"] == pytest.approx(metrics["test/exact_neuron/acc"], abs=1e-6)
    assert 0.9 < metrics["test/surrogate_agreement"] <= 1.0
    assert len([k for k in metrics if k.startswith("test/surrogate_agreement/")]) == cfg.model.encoder.n_layers


def test_lra_eval_refuses_the_swap_for_a_model_without_a_surrogate(compose_train, capsys):
    cfg = compose_train("model=lif_ssm", "profile=tiny", "trainer.max_epochs=1")
    record = run(cfg)
    checkpoint = record["best_checkpoint"] or str(Path(cfg.paths.run_dir) / "checkpoints" / "last.ckpt")
    assert eval_cli.main([f"ckpt_path={checkpoint}", "exact_neurons=true"]) == 2
    assert "has no neuron that approximates another" in capsys.readouterr().err
    assert eval_cli.main([f"ckpt_path={checkpoint}", "exact_neurons=yes"]) == 2
