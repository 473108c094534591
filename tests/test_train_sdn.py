"""``python -m lra_snn.cli.train_sdn`` (``make train-sdn``) at a reduced size: it trains, lowers the loss, and writes
a weight file that the SDN neuron loads and a report of finite numbers; its LIF labels follow the definition."""

from __future__ import annotations

import json
import math

import torch

from lra_snn.cli import train_sdn
from lra_snn.neurons.sdn import SurrogateDynamicNeuron

REDUCED = ["--n-train", "256", "--n-val", "32", "--length", "64", "--epochs", "2", "--seed", "3"]


def test_lif_labels_are_the_hard_reset_lif():
    """tau = 0.125, V_th = 1: m_t = tau u_{t-1} after the previous step's reset (u_0 = 0)."""
    x = torch.tensor([[0.9, 0.9, 2.0, 0.1, -0.4, 1.0]])
    mem, spikes = train_sdn.lif_membrane(x, tau=0.125, v_th=1.0)
    # u: 0.9, 0.1125 + 0.9 = 1.0125 (spike, reset), 2.0 (spike, reset), 0.1, 0.0125 - 0.4 = -0.3875, 0.95
    torch.testing.assert_close(mem, torch.tensor([[0.0, 0.1125, 0.0, 0.0, 0.0125, -0.0484375]]))
    assert spikes.tolist() == [[0.0, 1.0, 1.0, 0.0, 0.0, 0.0]]


def finite_numbers(value) -> bool:
    if isinstance(value, dict):
        return all(finite_numbers(v) for v in value.values())
    if isinstance(value, list):
        return all(finite_numbers(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def test_a_reduced_training_writes_weights_the_neuron_loads_and_a_finite_report(tmp_path, capsys):
    weights, report_dir = tmp_path / "weights.json", tmp_path / "report"
    assert train_sdn.main([*REDUCED, "--out", str(weights), "--report", str(report_dir)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2 and lines[0].startswith("epoch   1/2  loss ")

    stored = json.loads(weights.read_text())
    assert stored["lif"] == {"tau": 0.125, "v_th": 1.0, "reset": 0.0}
    assert stored["training"] | {"torch": None} == {
        "n_train": 256, "n_val": 32, "length": 64, "std": 1.0, "seed": 3, "tau": 0.125, "v_th": 1.0,
        "epochs": 2, "batch": 64, "threads": 1, "torch": None,
    }  # fmt: skip
    neuron = SurrogateDynamicNeuron(4, weights=str(weights))
    assert torch.equal(neuron.predictor.decoder_bias, torch.tensor(stored["weights"]["decoder.bias"][0]))
    assert neuron(torch.randn(2, 9, 4)).shape == (2, 9, 4)

    report = json.loads((report_dir / "report.json").read_text())
    assert finite_numbers(report) and report["command"].startswith("python -m lra_snn.cli.train_sdn --n-train 256")
    assert [row["inputs"] for row in report["held_out"]] == ["N(0, 1)", "N(0, 0.5^2)", "N(0, 2^2)", "N(0.3, 1)"]
    first, last = (entry["train_loss"] for entry in report["history"])
    assert last < 0.5 * first  # the training lowers the loss
    assert "| N(0.3, 1) |" in (report_dir / "report.md").read_text()
