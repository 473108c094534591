"""The model zoo: every `model=<name>` composes, builds and trains a step; neurons swap by config."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from lra_snn.config.zoo import models
from lra_snn.models.backbone import SequenceEncoder
from lra_snn.models.blocks import S4DBlock
from lra_snn.models.gsu import GatedSpikingUnit
from lra_snn.models.s4d import S4DKernel
from lra_snn.models.sd_tcm import SDTCMBlock
from lra_snn.models.zoo import fixed_length_neuron
from lra_snn.neurons import Neuron, build_neuron
from lra_snn.neurons.dsn import DSN
from lra_snn.neurons.fixed_length import PadToLength
from lra_snn.neurons.lif import DecoupledResetLIF
from lra_snn.neurons.lif_hard import HardResetLIF
from lra_snn.neurons.prf import PRF
from lra_snn.neurons.psn import PSN, MaskedPSN, SlidingPSN
from lra_snn.neurons.refractory import RefractoryLIF
from lra_snn.neurons.sdn import SurrogateDynamicNeuron
from lra_snn.neurons.threshold import ThresholdSpike
from lra_snn.ops.refractory_iteration.loop import loop_is_compiled
from lra_snn.optim.groups import group_of
from lra_snn.training.cell import run

VOCAB = 18
# zoo name -> (block, spiking neuron class, or None for the GELU baseline)
ZOO = {
    "s4d": (S4DBlock, None),
    "prf": (SDTCMBlock, PRF),
    "spike_ssm": (S4DBlock, RefractoryLIF),
    "psn_ssm": (S4DBlock, PSN),
    "masked_psn_ssm": (S4DBlock, MaskedPSN),
    "sliding_psn_ssm": (S4DBlock, SlidingPSN),
    "dsn_ssm": (S4DBlock, DSN),
    "lif_ssm": (S4DBlock, DecoupledResetLIF),
    "binary_s4d": (S4DBlock, ThresholdSpike),
    "binary_s4d_gsu": (S4DBlock, None),  # the GSU's ternary spikes sit in the mixer, not the neuron slot
    "spikingssm": (S4DBlock, SurrogateDynamicNeuron),
    "spikingssm_lif": (S4DBlock, HardResetLIF),
}
GSU_MODELS = {"binary_s4d_gsu"}
SS4D_MODELS = {"spikingssm", "spikingssm_lif"}  # SpikingSSMs' SS4D: a trainable B and a learnable threshold


# Parameters at the tiny profile with 2 layers (H = 16 channels, vocabulary 18, d_state N = 4, BatchNorm,
# the data's T = 60 steps), counted by hand from the modules:
H, LAYERS, N, T = 16, 2, 4, 60
EMBEDDING = VOCAB * H
NORM = 2 * H  # BatchNorm weight and bias
# S4D block: kernel (log_dt, log -Re A, Im A, C as N/2 complex = N reals) for 2 directions, D, Linear H -> 2H
S4D_BLOCK = 2 * H * (1 + N // 2 + N // 2 + N) + H + (H * 2 * H + 2 * H)
# SpikingSSMs' SS4D: the S4D block plus a trainable B (N/2 complex = N reals, 2 directions) and ln_vth (H)
SS4D_EXTRA = 2 * H * N + H
# Binary S4D + GSU: the S4D block with the GSU (W: H x H, biases b and c) in place of Linear H -> 2H
GSU_BLOCK = S4D_BLOCK - (H * 2 * H + 2 * H) + (H * H + 2 * H)
# SD-TCM block: token mixer Linear H -> H, channel mixer Linear H -> H and its amplitude
SD_TCM_BLOCK = (H * H + H) + (H * H + H + 1)
NEURON_PARAMETERS = {
    None: 0,
    DecoupledResetLIF: 0,
    PRF: 2 * H,  # log_Delta, log_theta
    RefractoryLIF: 2 * H,  # V_th, rho
    PSN: T * T + T,
    MaskedPSN: T * T + T,  # W (T x T), b (T)
    SlidingPSN: 4 + 1,  # k = 4 weights, b
    DSN: H * 4 + H,  # depthwise decay conv of width 4, its bias
    ThresholdSpike: 0,
    SurrogateDynamicNeuron: 0,  # a frozen predictor: buffers, not parameters
    HardResetLIF: 0,
}


def expected_parameters(block_class: type, neuron_class: type | None, gsu: bool = False, ss4d: bool = False) -> int:
    block = (GSU_BLOCK if gsu else S4D_BLOCK) if block_class is S4DBlock else SD_TCM_BLOCK
    block += SS4D_EXTRA if ss4d else 0
    return EMBEDDING + LAYERS * (block + NEURON_PARAMETERS[neuron_class] + NORM)


def spiking_neuron(block: nn.Module) -> nn.Module | None:
    """The block's configured spiking neuron, unwrapped from a fixed-length adapter."""
    neuron = block.temporal if isinstance(block, SDTCMBlock) else block.activation
    if not isinstance(neuron, Neuron):
        return None
    return neuron.neuron if isinstance(neuron, PadToLength) else neuron


def build_encoder(cfg) -> SequenceEncoder:
    return instantiate(cfg.model.encoder, vocab_size=VOCAB)


def tiny_batch(length: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(3, VOCAB, (3, length), generator=generator), torch.tensor([length, 17, 5])


def test_the_table_describes_models_of_the_zoo():
    assert set(ZOO) <= set(models())  # a model the configs no longer define is dropped from the table


@pytest.mark.parametrize("name", models())
def test_zoo_model_builds_and_runs_forward_backward(compose_train, name):
    torch.manual_seed(0)
    cfg = compose_train(f"model={name}", "profile=tiny", "model.encoder.n_layers=2")
    assert cfg.model.name == name
    encoder = build_encoder(cfg)
    if name in ZOO:  # what the table knows of it: its block, its neuron, its parameters counted by hand
        block_class, neuron_class = ZOO[name]
        assert all(isinstance(b.layer, block_class) for b in encoder.blocks)
        neuron = spiking_neuron(encoder.blocks[0].layer)
        assert (neuron is None) if neuron_class is None else type(neuron) is neuron_class
        gsu = name in GSU_MODELS
        assert all(isinstance(getattr(b.layer, "mix", None), GatedSpikingUnit) == gsu for b in encoder.blocks)
        expected = expected_parameters(block_class, neuron_class, gsu, name in SS4D_MODELS)
        assert sum(p.numel() for p in encoder.parameters()) == expected
    inputs, lengths = tiny_batch()
    features = encoder(inputs, lengths)
    assert torch.equal(features[1, 17:], torch.zeros(7, H)) and torch.equal(features[2, 5:], torch.zeros(19, H))
    features.square().mean().backward()
    missing = [n for n, p in encoder.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"


@pytest.mark.parametrize("name", models())
def test_ssm_and_neuron_dynamics_tensors_are_tagged_dynamics(compose_train, name):
    encoder = build_encoder(compose_train(f"model={name}", "profile=tiny"))
    for module_name, module in encoder.named_modules():
        if isinstance(module, (Neuron, S4DKernel)):
            for p_name, p in module.named_parameters(recurse=False):
                if not (isinstance(module, S4DKernel) and p_name == "C"):  # C is an ordinary weight
                    assert group_of(p) == "dynamics", f"{module_name}.{p_name}"
    amplitudes = [m.channel_mix.amplitude for m in encoder.modules() if isinstance(m, SDTCMBlock)]
    assert all(group_of(a) == "dynamics" for a in amplitudes)
    assert bool(amplitudes) == (name == "prf")


@pytest.mark.parametrize(
    ("overrides", "block_class", "neuron_class"),
    [
        (["model=lif_ssm", "model/neuron=dsn"], S4DBlock, DSN),
        (["model=psn_ssm", "model/neuron=sliding_psn"], S4DBlock, SlidingPSN),
        (["model=prf", "model/neuron=lif"], SDTCMBlock, DecoupledResetLIF),
        (["model=s4d", "+model/neuron=refractory_lif"], S4DBlock, RefractoryLIF),
        (["model=lif_ssm", "model/block=sd_tcm"], SDTCMBlock, DecoupledResetLIF),
    ],
)
def test_neuron_and_block_swap_by_config(compose_train, overrides, block_class, neuron_class):
    encoder = build_encoder(compose_train(*overrides, "profile=tiny", f"model.encoder.n_layers={LAYERS}"))
    block = encoder.blocks[0].layer
    assert type(block) is block_class and type(spiking_neuron(block)) is neuron_class
    assert sum(p.numel() for p in encoder.parameters()) == expected_parameters(block_class, neuron_class)
    inputs, lengths = tiny_batch()
    assert torch.equal(encoder(inputs, lengths)[2, 5:], torch.zeros(19, H))  # runs, padding zeroed


def test_masked_psn_brings_its_lambda_schedule_and_no_other_neuron_does(compose_train):
    with_mask = compose_train("model=lif_ssm", "model/neuron=masked_psn", "profile=tiny")
    assert with_mask.callbacks.masked_psn_lambda._target_ == "lra_snn.training.callbacks.MaskedPSNLambdaSchedule"
    assert "masked_psn_lambda" in compose_train("model=masked_psn_ssm").callbacks
    for name in sorted(set(ZOO) - {"masked_psn_ssm"}):
        assert "masked_psn_lambda" not in compose_train(f"model={name}").callbacks, name
    assert "energy" in compose_train("model=s4d").callbacks


def test_fixed_length_neurons_take_T_from_the_data(compose_train):
    cfg = compose_train("model=psn_ssm", "profile=tiny")
    assert cfg.model.encoder.layer.neuron.T == cfg.data.max_length == 60
    encoder = build_encoder(cfg)
    assert encoder.blocks[0].layer.activation.T == 60


def test_s4d_keeps_its_meaning(compose_train):
    layer = compose_train("model=s4d", "profile=full").model.encoder.layer
    assert layer._target_ == "lra_snn.models.blocks.S4DBlock" and "neuron" not in layer
    assert (layer.d_state, layer.init, layer.bidirectional) == (4, "inv", True)


def test_pad_to_length_equals_the_neuron_on_explicitly_padded_input():
    torch.manual_seed(5)
    wrapped = fixed_length_neuron("psn", 4, T=10)
    x = torch.randn(2, 7, 4)
    expected = wrapped.neuron(torch.cat([x, torch.zeros(2, 3, 4)], 1))[:, :7]
    spikes = wrapped(x)
    assert torch.equal(spikes, expected)
    assert wrapped.firing_rate.item() == pytest.approx(expected.mean().item())
    assert torch.equal(wrapped.forward_sequential(x), expected)


def test_pad_to_length_on_a_causal_neuron_streams_like_the_neuron():
    torch.manual_seed(6)
    wrapped = fixed_length_neuron("masked_psn", 3, T=8, k=2)
    wrapped.neuron.lambda_ = 1.0
    x = torch.randn(2, 5, 3)
    state = wrapped.init_state(2)
    steps = []
    for x_t in x.unbind(1):
        s_t, state = wrapped.step(x_t, state)
        steps.append(s_t)
    assert torch.equal(torch.stack(steps, 1), wrapped(x))


def test_pad_to_length_refuses_longer_inputs_and_variable_length_neurons():
    wrapped = fixed_length_neuron("psn", 4, T=6)
    with pytest.raises(ValueError, match="at most T=6 steps but the input has 9"):
        wrapped(torch.randn(1, 9, 4))
    with pytest.raises(ValueError, match="fixed-length neuron"):
        PadToLength(build_neuron("lif", 4))


def test_refractory_solver_convergence_is_logged_in_training_and_recorded_at_test(compose_train):
    cfg = compose_train(
        "model=spike_ssm",
        "profile=tiny",
        "trainer.max_epochs=1",
        "model.encoder.layer.neuron.train_max_iters=2",
        "model.encoder.layer.neuron.solver=iterate",  # iteration alone, so the test pass counts its iterations
    )
    record = run(cfg)
    with open(Path(cfg.paths.run_dir) / "logs" / "metrics.csv") as log:
        rows = list(csv.DictReader(log))
    logged = [float(r["train/unconverged_fraction_step"]) for r in rows if r.get("train/unconverged_fraction_step")]
    assert logged and all(0.0 <= value <= 1.0 for value in logged)
    assert (
        max(float(r["train/solver_iterations_max_step"]) for r in rows if r.get("train/solver_iterations_max_step"))
        <= 2
    )
    metrics = record["metrics"]
    # the training cap is not applied at test: every test pass converged, in more iterations than the cap
    assert metrics["test/unconverged_fraction"] == 0.0
    assert 2 < metrics["test/solver_iterations"] <= metrics["test/solver_iterations_max"] <= cfg.data.max_length
    assert metrics["test/solver_loop_steps"] == 0.0


def test_refractory_solver_loop_steps_are_recorded_at_test(compose_train):
    """solver=auto on the CPU: the compiled time loop, the definition itself, solves every test step, with
    no iteration to check it."""
    cfg = compose_train("model=spike_ssm", "profile=tiny", "trainer.max_epochs=1")
    metrics = run(cfg)["metrics"]
    assert metrics["test/unconverged_fraction"] == 0.0
    assert metrics["test/solver_loop_steps"] > 0
    if loop_is_compiled(torch.zeros(1, 1, 1)):
        assert metrics["test/solver_iterations"] == metrics["test/solver_iterations_max"] == 0.0
