"""Energy accounting on hand-countable toy networks: known spikes -> known ACs, known shapes -> known MACs,
under our convention and the PRF paper's; the PRF paper's per-task energies reproduced from its tables."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lra_snn.metrics.energy import (
    SD_TCM_SHORTCUTS,
    EnergyMeter,
    OpCounter,
    energy_mj,
    holds_spikes,
    s4d_dense_macs_per_step,
    s4d_macs_per_step,
    uncounted_layers,
)
from lra_snn.models.backbone import SequenceEncoder
from lra_snn.models.blocks import S4DBlock
from lra_snn.models.gsu import GatedSpikingUnit
from lra_snn.models.sd_tcm import SDTCMBlock
from lra_snn.models.zoo import fixed_length_neuron
from lra_snn.neurons import Neuron, build_neuron
from lra_snn.neurons.threshold import ThresholdSpike

S, Q = 0.9, 0.1  # a value that spikes (>= 0.5) and one that does not
# (sequence, step, channel); sequence 1 has length 2, so its last step is padding
INPUTS = torch.tensor(
    [
        [[S, Q, S, Q], [Q, Q, Q, Q], [S, S, S, Q]],  # 2 + 0 + 3 spikes
        [[S, Q, Q, Q], [Q, S, Q, Q], [S, S, S, S]],  # 1 + 1 (+ 4 in the padding, not counted)
    ]
)
LENGTHS = torch.tensor([3, 2])
SPIKES, STEPS = 7, 5  # counted spikes, counted steps
SYNAPSE_OUT, DENSE_OUT = 5, 3


class Toy(nn.Module):
    """A threshold neuron feeding a Linear (ACs) and a Linear reading the real input (MACs)."""

    def __init__(self) -> None:
        super().__init__()
        self.spiking = ThresholdSpike(4, v_th=0.5)
        self.synapse = nn.Linear(4, SYNAPSE_OUT)
        self.dense = nn.Linear(4, DENSE_OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.synapse(self.spiking(x)).sum() + self.dense(x).sum()


class IntegerNeuron(Neuron):
    """Integer spikes ``clip(round(x), 0, 3)``, memoryless; declares 2 MACs per step and channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._record(x.round().clamp(0, 3))

    forward_sequential = forward

    def init_state(self, batch, device=None, dtype=torch.float32) -> None:
        return None

    def step(self, x_t: torch.Tensor, state: None) -> tuple[torch.Tensor, None]:
        return x_t.round().clamp(0, 3), state

    def macs_per_step(self) -> int:
        return 2


def count(model: nn.Module, lengths: torch.Tensor | None, *inputs: torch.Tensor) -> OpCounter:
    """Counts of one forward pass ``model(*inputs)`` over sequences of true lengths ``lengths``."""
    counter = OpCounter(model).attach()
    counter.set_lengths(lengths)
    with torch.no_grad():
        model(*inputs)
    counter.detach()
    return counter


def test_known_spikes_give_known_acs_and_known_shapes_give_known_macs():
    counter = count(Toy(), LENGTHS, INPUTS)
    layers = counter.layers
    assert layers["spiking"].spikes == SPIKES and layers["spiking"].neuron_steps == STEPS * 4
    assert counter.firing_rates() == {"spiking": pytest.approx(SPIKES / (STEPS * 4))}
    assert layers["synapse"].acs == SPIKES * SYNAPSE_OUT and layers["synapse"].macs == 0
    assert layers["dense"].macs == STEPS * 4 * DENSE_OUT and layers["dense"].acs == 0
    assert counter.total_acs() == 35 and counter.total_macs() == 60
    assert energy_mj(counter.total_acs(), counter.total_macs()) == pytest.approx((0.9 * 35 + 4.6 * 60) * 1e-9)


def test_without_lengths_every_step_counts():
    counter = count(Toy(), None, INPUTS)
    assert counter.layers["spiking"].spikes == SPIKES + 4
    assert counter.total_acs() == (SPIKES + 4) * SYNAPSE_OUT and counter.total_macs() == 6 * 4 * DENSE_OUT


def test_integer_spikes_count_their_value():
    model = nn.Sequential(IntegerNeuron(2), nn.Linear(2, 4))
    x = torch.tensor([[[2.2, 0.0], [3.9, -1.0], [0.6, 1.4]]])  # spikes 2, 0 | 3, 0 | 1, 1 -> 7
    counter = count(model, torch.tensor([3]), x)
    assert counter.layers["0"].spikes == 7 and counter.firing_rates()["0"] == pytest.approx(7 / 6)
    assert counter.layers["1"].acs == 7 * 4
    assert counter.layers["0"].macs == 3 * 2 * 2  # steps x channels x declared MACs


def test_backbone_counts_input_layer_s4d_and_gelu_mixer_as_macs():
    torch.manual_seed(0)
    d_model, d_state = 4, 4
    encoder = SequenceEncoder(d_model, 1, lambda d_model: S4DBlock(d_model, d_state, bidirectional=True), d_input=2)
    inputs = torch.randint(0, 3, (2, 5, 2)).float()  # integer-valued data still counts as real input (MACs)
    lengths = torch.tensor([5, 3])
    counter = count(encoder, lengths, inputs, lengths)
    steps = 8
    s4d_per_step = 2 * d_model * (d_state // 2) * 8 + d_model  # directions x channels x modes x 8, + D skip
    assert s4d_macs_per_step(encoder.blocks[0].layer.ssm) == s4d_per_step
    assert counter.layers["encoder"].macs == steps * 2 * d_model
    assert counter.layers["blocks.0.layer.ssm"].macs == steps * s4d_per_step
    assert counter.layers["blocks.0.layer.mix"].macs == steps * d_model * 2 * d_model
    assert counter.total_acs() == 0 and counter.mean_firing_rate() is None


def test_spiking_block_counts_neuron_dynamics_and_synaptic_acs():
    torch.manual_seed(1)
    block = S4DBlock(4, 4, neuron=lambda d_model: build_neuron("lif", d_model))
    x = 3 * torch.randn(2, 6, 4)
    spikes = block.activation(block.ssm(x))
    counter = count(block, None, x)
    assert counter.layers["activation"].spikes == spikes.sum().item() > 0
    assert counter.layers["activation"].macs == 12 * 4 * 1  # LIF: 1 MAC per step and channel
    assert counter.layers["mix"].acs == spikes.sum().item() * 8 and counter.layers["mix"].macs == 0


def test_a_wrapped_neuron_is_counted_once_at_its_wrapper():
    model = nn.Sequential(fixed_length_neuron("psn", 3, T=8))
    counter = count(model, None, torch.randn(2, 5, 3))
    assert list(counter.layers) == ["0"]
    assert counter.layers["0"].neuron_steps == 2 * 5 * 3 and counter.layers["0"].macs == 2 * 5 * 3 * 8


@pytest.mark.parametrize(
    ("name", "kwargs", "macs"),
    [
        ("lif", {}, 1),
        ("prf", {}, 5),
        ("prf", {"reset": True}, 6),
        ("refractory_lif", {}, 2),
        ("psn", {"T": 16}, 16),
        ("masked_psn", {"T": 16, "k": 3}, 16),
        ("sliding_psn", {"k": 5}, 5),
        ("dsn", {}, 6),
    ],
)
def test_neuron_dynamics_costs(name, kwargs, macs):
    assert build_neuron(name, 2, **kwargs).macs_per_step() == macs


def test_masked_psn_costs_its_band_once_fully_masked_and_a_neuron_without_a_cost_is_refused():
    neuron = build_neuron("masked_psn", 2, T=16, k=3)
    neuron.lambda_ = 1.0
    assert neuron.macs_per_step() == 3
    assert fixed_length_neuron("masked_psn", 2, T=16, k=3).macs_per_step() == 16  # a wrapper delegates
    assert ThresholdSpike(2).macs_per_step() == 0

    class Uncosted(IntegerNeuron):
        macs_per_step = Neuron.macs_per_step  # the three forms, but no MAC count

    with pytest.raises(TypeError, match=r"abstract.*macs_per_step"):
        Uncosted(2)


def test_spike_detection_and_uncounted_layers():
    assert holds_spikes(torch.tensor([0.0, 1.0, 3.0])) and not holds_spikes(torch.tensor([0.0, 0.5]))
    assert not holds_spikes(torch.tensor([-1.0, 1.0]))
    model = nn.Sequential(nn.Conv1d(2, 2, 3), nn.Linear(2, 2), nn.LayerNorm(2))
    assert uncounted_layers(model) == ["0 (Conv1d)"]


class ToyTask(L.LightningModule):
    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.network(batch["inputs"])


def run_test(network: nn.Module) -> dict[str, float]:
    batches = [{"inputs": INPUTS, "lengths": LENGTHS, "labels": torch.zeros(2, dtype=torch.long)}]
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[EnergyMeter()],
    )
    return trainer.test(ToyTask(network), DataLoader(batches, batch_size=None), verbose=False)[0]


def test_energy_meter_logs_per_example_counts_through_trainer_test():
    metrics = run_test(Toy())
    assert metrics["test/firing_rate/network.spiking"] == pytest.approx(SPIKES / (STEPS * 4))
    assert metrics["test/firing_rate"] == pytest.approx(SPIKES / (STEPS * 4))
    assert metrics["test/acs"] == pytest.approx(35 / 2) and metrics["test/macs"] == pytest.approx(60 / 2)
    assert metrics["test/energy_mj"] == pytest.approx((0.9 * 35 + 4.6 * 60) * 1e-9 / 2)


def test_energy_meter_logs_no_firing_rate_for_a_network_without_spiking_layers():
    metrics = run_test(nn.Linear(4, 3))
    assert "test/firing_rate" not in metrics and metrics["test/macs"] == pytest.approx(STEPS * 4 * 3 / 2)
    assert metrics["test/acs"] == 0 and metrics["test/energy_mj"] == pytest.approx(4.6 * 30 * 1e-9)


def test_energy_meter_refuses_negative_energies():
    with pytest.raises(ValueError, match="must be >= 0"):
        EnergyMeter(ac_energy_pj=-1.0)


# --------------------------------------------------------------------------- the two named conventions


def test_both_conventions_on_a_hand_counted_s4d_block():
    """One S4D block (D = 2 channels, d_state N = 2: one complex mode, causal, GELU, Linear 2 -> 4, GLU)
    over 3 steps. Ours, per step: S4D 2 channels x 1 mode x 8 + 2 (D u) = 18 MACs, Linear 2 x 4 = 8 MACs:
    26 x 3 = 78 MACs = 358.8 pJ. The PRF paper's, per step: dense S4D H^2 + 2DH + D^2 = 4 + 8 + 4 = 16,
    Linear 8, GLU 3 x 2 output channels = 6: 30 x 3 = 90 MACs = 414 pJ."""
    torch.manual_seed(2)
    block = S4DBlock(2, d_state=2, bidirectional=False)
    counter = count(block, None, torch.randn(1, 3, 2))
    assert s4d_dense_macs_per_step(block.ssm) == 16
    assert (counter.total_acs(), counter.total_macs()) == (0, 78)
    assert (counter.total_prf_acs(), counter.total_prf_macs()) == (0, 90)
    assert energy_mj(counter.total_acs(), counter.total_macs()) == pytest.approx(358.8e-9)
    assert energy_mj(counter.total_prf_acs(), counter.total_prf_macs()) == pytest.approx(414e-9)


def test_both_conventions_on_a_hand_counted_sd_tcm_block():
    """An SD-TCM block (D = 2) whose temporal neuron is a threshold at 0.5 and whose token mixer is zeroed,
    so both neurons fire on U >= 0.5: U = (0.9, 0.1), (0.1, 0.1), (0.9, 0.9) gives 3 spikes each. Ours:
    token mixer 3 spikes x 2 outputs + channel mixer 3 x 2 = 12 ACs = 10.8 pJ. The PRF paper's adds the
    two membrane shortcuts, 2 x 2 channels x 3 steps = 12 ACs: 24 ACs = 21.6 pJ."""
    block = SDTCMBlock(2, lambda d_model: ThresholdSpike(d_model, v_th=0.5))
    with torch.no_grad():
        block.token_mix.weight.zero_()
        block.token_mix.bias.zero_()
    u = torch.tensor([[[0.9, 0.1], [0.1, 0.1], [0.9, 0.9]]])
    counter = count(block, None, u)
    assert (counter.total_acs(), counter.total_macs()) == (12, 0)
    assert (counter.total_prf_acs(), counter.total_prf_macs()) == (24, 0)
    assert energy_mj(counter.total_prf_acs(), counter.total_prf_macs()) == pytest.approx(21.6e-9)


def test_prf_dynamics_cost_five_multiplications_and_three_additions_in_the_papers_convention():
    """A PRF layer of 2 channels over sequences of true lengths 3 and 2: 10 neuron-steps. Ours: 5 MACs each,
    50 MACs. The PRF paper's (Table 23, 5 mt E_Mul + 3 mt E_AC): 50 MACs and 30 ACs."""
    counter = count(nn.Sequential(build_neuron("prf", 2)), torch.tensor([3, 2]), torch.randn(2, 3, 2))
    assert (counter.total_acs(), counter.total_macs()) == (0, 50)
    assert (counter.total_prf_acs(), counter.total_prf_macs()) == (30, 50)
    assert build_neuron("lif", 2).dynamics_ops_per_step() == (1, 0)  # other neurons: their MACs, as multiplications


def test_gsu_counts_additions_for_both_ternary_paths_and_a_mac_for_the_product():
    """GSU with D = 2, W = [[2, -0.1], [-1, 0.5]] (Ter(W) has 3 non-zero entries), one step y = (3, -0.3):
    Ter(y) = (1, 0), one spike x 2 outputs = 2 ACs, y Ter(W) = 3 ACs, the product 2 MACs; both conventions."""
    gsu = GatedSpikingUnit(2)
    with torch.no_grad():
        gsu.weight.copy_(torch.tensor([[2.0, -0.1], [-1.0, 0.5]]))
    counter = count(nn.Sequential(gsu), None, torch.tensor([[[3.0, -0.3]]]))
    assert counter.layers["0"].acs == counter.layers["0"].prf_acs == 5
    assert counter.layers["0"].macs == counter.layers["0"].prf_macs == 2
    assert counter.layers["0.spike"].spikes == 1 and uncounted_layers(gsu) == []


# PRF paper, Table 8 (depth, D), Table 11 (average firing rate, %), the task lengths, and Table 3 (energy, mJ)
PRF_PAPER_TASKS = {
    "listops": (8, 128, 3.53, 2048, 0.075),
    "text": (6, 256, 4.32, 4096, 0.298),
    "retrieval": (6, 256, 1.48, 4000, 0.211),
    "image": (6, 512, 3.47, 1024, 0.187),
    "pathfinder": (6, 256, 3.29, 1024, 0.067),
}


@pytest.mark.parametrize("task", sorted(PRF_PAPER_TASKS))
def test_the_prf_convention_reproduces_the_prf_papers_energies(task):
    """Per layer and step, an SD-TCM block at firing rate fr: the two Linear D -> D layers read spikes,
    2 fr D^2 ACs; the PRF dynamics 5 D multiplications and 3 D additions; the shortcuts 2 D ACs. Times
    depth and length: Table 3's per-example energy, to its three decimals (docs/energy.md)."""
    depth, d, rate, length, published = PRF_PAPER_TASKS[task]
    multiplications, additions = build_neuron("prf", 1).dynamics_ops_per_step()
    acs = 2 * rate / 100 * d * d + (additions + SD_TCM_SHORTCUTS) * d
    macs = multiplications * d
    assert round(energy_mj(acs, macs) * depth * length, 3) == published


def test_energy_meter_logs_the_prf_convention_beside_ours():
    metrics = run_test(Toy())
    # the toy has no S4D, GLU, SD-TCM or neuron dynamics: the two conventions agree
    assert metrics["test/energy_prf_convention_mj"] == pytest.approx(metrics["test/energy_mj"])
    assert metrics["test/acs_prf_convention"] == pytest.approx(35 / 2)
