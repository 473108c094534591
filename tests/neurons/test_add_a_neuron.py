"""Adding a neuron by the recipe: its own file, one registry line, one YAML in conf/model/neuron/.

A toy neuron written that way (the module and the YAML in a temporary folder, the registry line
by monkeypatching ``NEURONS``, the YAML folder added to Hydra's search path on the command line)
runs through the energy accounting, the speed benchmark and a tiny training run, none of which
is told about it.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from lra_snn.cli import bench
from lra_snn.metrics.energy import OpCounter
from lra_snn.models.blocks import S4DBlock
from lra_snn.neurons import NEURONS, build_neuron
from lra_snn.training.cell import run

TOY_FILE = '''
"""Toy neuron: leaky integration without reset, ``u_t = beta u_{t-1} + x_t``, ``s_t = H(u_t - V_th)``."""

import torch
from torch import Tensor

from lra_snn.neurons import Neuron


class LeakyIntegrator(Neuron):
    """No reset, so the parallel form is one product with the lower-triangular powers of beta."""

    def __init__(self, d_model: int, *, beta: float = 0.5, v_th: float = 1.0) -> None:
        super().__init__(d_model)
        self.beta, self.v_th = beta, v_th

    def _fire(self, u: Tensor) -> Tensor:
        """H(u - V_th) forward, the derivative of a sigmoid backward (a surrogate gradient)."""
        soft = torch.sigmoid(4 * (u - self.v_th))
        return (u >= self.v_th).to(u.dtype) + (soft - soft.detach())

    def forward(self, x: Tensor) -> Tensor:
        t = torch.arange(x.shape[1], device=x.device)
        lags = t[:, None] - t[None, :]
        decay = torch.where(lags >= 0, self.beta ** lags.clamp(min=0).to(x.dtype), torch.zeros((), dtype=x.dtype))
        return self._record(self._fire(torch.einsum("tj,bjd->btd", decay, x)))

    def forward_sequential(self, x: Tensor) -> Tensor:
        state, spikes = self.init_state(x.shape[0], x.device, x.dtype), []
        for x_t in x.unbind(1):
            s_t, state = self.step(x_t, state)
            spikes.append(s_t)
        return self._record(torch.stack(spikes, 1))

    def init_state(self, batch, device=None, dtype=torch.float32) -> Tensor:
        return torch.zeros(batch, self.d_model, device=device, dtype=dtype)

    def step(self, x_t: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        u = self.beta * u + x_t
        return self._fire(u), u

    def macs_per_step(self) -> int:
        return 1  # the decay beta * u


class Uncosted(LeakyIntegrator):
    """The three forms, but no ``macs_per_step`` of its own."""

    macs_per_step = Neuron.macs_per_step
'''

TOY_YAML = """\
# @package model.encoder.layer.neuron
_target_: lra_snn.neurons.build_neuron
_partial_: true
name: toy_leaky
beta: 0.5
v_th: 1.0
"""


@pytest.fixture
def toy(tmp_path, monkeypatch) -> str:
    """Add the toy neuron by the recipe; returns the override that puts its YAML on Hydra's search path."""
    (tmp_path / "toy_neuron.py").write_text(textwrap.dedent(TOY_FILE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toy_neuron", raising=False)
    monkeypatch.setitem(NEURONS, "toy_leaky", "toy_neuron:LeakyIntegrator")
    monkeypatch.setitem(NEURONS, "toy_uncosted", "toy_neuron:Uncosted")
    (tmp_path / "toy_conf" / "model" / "neuron").mkdir(parents=True)
    (tmp_path / "toy_conf" / "model" / "neuron" / "toy_leaky.yaml").write_text(TOY_YAML)
    yield f"hydra.searchpath=[file://{tmp_path / 'toy_conf'}]"
    sys.modules.pop("toy_neuron", None)


def test_the_toy_neuron_has_three_agreeing_forms_and_an_incomplete_one_is_refused(toy, run_steps):
    torch.manual_seed(0)
    neuron = build_neuron("toy_leaky", 3)
    x = torch.randn(2, 11, 3, dtype=torch.float64)
    spikes = neuron(x)
    assert 0 < spikes.mean() < 1
    assert torch.equal(neuron.forward_sequential(x), spikes) and torch.equal(run_steps(neuron, x), spikes)
    with pytest.raises(TypeError, match="does not implement macs_per_step"):
        build_neuron("toy_uncosted", 3)


def test_energy_counts_the_toy_dynamics_it_declares_and_acs_for_its_spikes(toy):
    torch.manual_seed(1)
    model = nn.Sequential(build_neuron("toy_leaky", 3), nn.Linear(3, 5))
    x = 2 * torch.randn(2, 7, 3)
    with torch.no_grad():
        spikes = model[0](x)
        counter = OpCounter(model).attach()
        counter.set_lengths(torch.tensor([7, 4]))  # 11 true steps
        model(x)
    counter.detach()
    counted = spikes[0].sum() + spikes[1, :4].sum()
    assert counter.layers["0"].macs == 11 * 3 * model[0].macs_per_step() == 33
    assert counter.layers["0"].spikes == counted.item() > 0
    assert counter.layers["1"].acs == counted.item() * 5 and counter.layers["1"].macs == 0


def test_the_benchmark_times_the_toy_neuron(toy, tmp_path, capsys):
    code = bench.main(
        [
            "--neurons",
            "toy_leaky",
            "--lengths",
            "12",
            "--repeats",
            "1",
            "--warmup",
            "1",
            "--batch",
            "2",
            "--d-model",
            "4",
            "--out",
            str(tmp_path / "bench"),
        ]
    )
    (path,) = (tmp_path / "bench").glob("bench_cpu_*.json")
    records = json.loads(path.read_text())["records"]
    timed = [r for r in records if r["implementation"] != "compiled"]  # a new neuron has no compiled loop
    assert code == 0 and len(timed) == len(bench.IMPLEMENTATIONS) * len(bench.PASSES)
    for record in timed:
        assert (record["neuron"], record["length"], record["status"]) == ("toy_leaky", 12, "ok"), record
        assert record["firing_rate"] is not None
    assert [(r["status"], r["reason"]) for r in records if r not in timed] == [
        ("unavailable", "toy_leaky has no compiled path")
    ] * len(bench.PASSES)
    assert "| toy_leaky | 12 |" in capsys.readouterr().out


def test_the_toy_neuron_composes_by_config_and_trains(toy, compose_train):
    cfg = compose_train(
        "data=listops",
        "model=lif_ssm",
        "model/neuron=toy_leaky",
        "model.name=toy_ssm",
        "profile=tiny",
        "trainer.max_epochs=1",
        toy,
    )
    assert cfg.model.encoder.layer.neuron.name == "toy_leaky"
    block = instantiate(cfg.model.encoder, vocab_size=18).blocks[0].layer
    assert isinstance(block, S4DBlock) and type(block.activation).__name__ == "LeakyIntegrator"
    record = run(cfg)
    assert record["status"] == "completed", record
    metrics = record["metrics"]
    firing = [key for key in metrics if key.startswith("test/firing_rate/") and key.endswith(".activation")]
    assert len(firing) == cfg.model.encoder.n_layers and 0 <= metrics[firing[0]] <= 1
    assert metrics["test/macs"] > 0 and metrics["test/acs"] > 0 and metrics["test/energy_mj"] > 0
