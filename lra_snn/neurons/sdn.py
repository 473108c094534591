"""SDN: a LIF whose membrane potential a frozen surrogate dynamic network predicts (docs/neurons.md, section 9).

Shen et al., "SpikingSSMs: Learning Long Sequences with Sparse and Parallel Spiking State Space Models",
AAAI 2025 (arXiv 2408.14909). The neuron approximated is the LIF with multiplicative decay tau = 0.125,
threshold V_th = 1 and a hard reset to 0, per channel, u_0 = 0:

    u_t = tau u_{t-1} + x_t,   s_t = H(u_t - V_th),   u_t <- (1 - s_t) u_t.

Its spike is ``s_t = H(m_t + x_t - V_th)`` with ``m_t = tau u_{t-1}``, the decayed potential before
input t (after the previous step's reset), which depends on x_1 .. x_{t-1} only. The SDN predicts m
from the whole input sequence at once, each channel a separate 1-channel sequence:

    e_t = w_enc x_t                                  1x1 conv 1 -> 8, no bias
    h_t = ReLU(BN(sum_{k=1..8} w_k e_{t-k}))          causal depthwise conv of 8 taps, strictly before t
    g_t = ReLU(BN(W_mix h_t) + h_t)                   1x1 conv 8 -> 8, residual
    m_t = w_dec . g_t + b_dec                         1x1 conv 8 -> 1

(encoded inputs before the first step are 0). It is trained once by regression on random currents
labelled by the exact LIF (``make train-sdn``, ``lra_snn.cli.train_sdn``), then frozen: the neuron runs
it in evaluation mode, each BatchNorm (running statistics, an affine map per channel) folded into the
conv before it, on the detached input and without gradient, so the spike's surrogate gradient
(triangle, ``max(0, 1 - |v|)``) reaches x through the ``+ x_t`` term only. Its weights ship as a JSON
file under ``sdn_weights/`` and are buffers: carried by checkpoints, never trained.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lra_snn.config.rules import POSITIVE, OneOf, Rule
from lra_snn.neurons.base import Neuron
from lra_snn.ops.hard_reset_scan import hard_reset_scan
from lra_snn.ops.surrogate import SURROGATES, spike

WIDTH = 8  # channels of the hidden layers
KERNEL = 8  # taps of the causal depthwise conv
WEIGHTS_DIR = Path(__file__).resolve().parent / "sdn_weights"
DEFAULT_WEIGHTS = "tau0.125.json"
WEIGHTS_FORMAT = 1
TRAIN_COMMAND = "make train-sdn"


def before_each_step(encoded: Tensor) -> Tensor:
    """``encoded`` (N, C, L) shifted so that a valid conv of ``KERNEL`` taps reads steps t-8 .. t-1 at step t."""
    return F.pad(encoded[..., :-1], (KERNEL, 0))


class SurrogateDynamicNetwork(nn.Module):
    """The SDN as it is trained (``lra_snn.cli.train_sdn``): convs and BatchNorms, batch statistics in
    training mode. Currents (N, L) -> predicted potentials m (N, L).

    The two convs followed by a BatchNorm have no bias: BatchNorm subtracts the mean, so a bias there
    would change nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Conv1d(1, WIDTH, 1, bias=False)
        self.depthwise = nn.Conv1d(WIDTH, WIDTH, KERNEL, groups=WIDTH, bias=False)
        self.depthwise_norm = nn.BatchNorm1d(WIDTH)
        self.mix = nn.Conv1d(WIDTH, WIDTH, 1, bias=False)
        self.mix_norm = nn.BatchNorm1d(WIDTH)
        self.decoder = nn.Conv1d(WIDTH, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.depthwise_norm(self.depthwise(before_each_step(self.encoder(x.unsqueeze(1))))))
        g = F.relu(self.mix_norm(self.mix(h)) + h)
        return self.decoder(g).squeeze(1)

    def eval_weights(self) -> dict[str, Any]:
        """What evaluation uses, as exact floats (nested lists): the weights and BatchNorms' running statistics."""
        state = self.state_dict()
        return {name: state[name].tolist() for name in sorted(state) if not name.endswith("num_batches_tracked")}


def folded_norm(weights: Mapping[str, Any], norm: str, eps: float) -> tuple[Tensor, Tensor]:
    """BatchNorm ``norm`` in evaluation mode as ``scale * y + shift`` per channel (float64)."""
    mean, var, gamma, beta = (
        torch.tensor(weights[f"{norm}.{key}"], dtype=torch.float64)
        for key in ("running_mean", "running_var", "weight", "bias")
    )
    scale = gamma / torch.sqrt(var + eps)
    return scale, beta - mean * scale


class MembranePredictor(nn.Module):
    """The frozen SDN in evaluation form, each BatchNorm folded into the conv before it, weights as
    buffers (folded in float64, stored in the default dtype).

    ``forward``: currents (N, L) -> m (N, L), all steps at once. ``init_state`` / ``step``: the same one
    step at a time, from the encoded inputs of the last ``KERNEL`` steps, oldest first."""

    encoder: Tensor
    depthwise_weight: Tensor
    depthwise_bias: Tensor
    mix_weight: Tensor
    mix_bias: Tensor
    decoder_weight: Tensor
    decoder_bias: Tensor

    def __init__(self, weights: Mapping[str, Any], norm_eps: float) -> None:
        super().__init__()

        def tensor(name: str) -> Tensor:
            return torch.tensor(weights[name], dtype=torch.float64)

        depth_scale, depth_shift = folded_norm(weights, "depthwise_norm", norm_eps)
        mix_scale, mix_shift = folded_norm(weights, "mix_norm", norm_eps)
        buffers = {
            "encoder": tensor("encoder.weight").reshape(WIDTH),
            "depthwise_weight": tensor("depthwise.weight").reshape(WIDTH, KERNEL) * depth_scale[:, None],
            "depthwise_bias": depth_shift,
            "mix_weight": tensor("mix.weight").reshape(WIDTH, WIDTH) * mix_scale[:, None],
            "mix_bias": mix_shift,
            "decoder_weight": tensor("decoder.weight").reshape(WIDTH),
            "decoder_bias": tensor("decoder.bias").reshape(()),
        }
        for name, value in buffers.items():
            self.register_buffer(name, value.to(torch.get_default_dtype()))

    def forward(self, x: Tensor) -> Tensor:
        encoded = self.encoder.view(1, WIDTH, 1) * x.unsqueeze(1)
        depthwise = F.conv1d(
            before_each_step(encoded), self.depthwise_weight.unsqueeze(1), self.depthwise_bias, groups=WIDTH
        )
        h = F.relu(depthwise)
        g = F.relu(F.conv1d(h, self.mix_weight.unsqueeze(-1), self.mix_bias) + h)
        return torch.einsum("ncl,c->nl", g, self.decoder_weight) + self.decoder_bias

    def init_state(self, shape: tuple[int, ...], device: torch.device | None, dtype: torch.dtype) -> Tensor:
        """The encoded inputs of the ``KERNEL`` steps before the first: zeros (*shape, WIDTH, KERNEL)."""
        return torch.zeros(*shape, WIDTH, KERNEL, device=device, dtype=dtype)

    def step(self, x_t: Tensor, window: Tensor) -> tuple[Tensor, Tensor]:
        """m_t (any shape) from the window of earlier encoded inputs, and the window moved on by x_t."""
        h = F.relu((window * self.depthwise_weight).sum(-1) + self.depthwise_bias)
        g = F.relu(h @ self.mix_weight.T + self.mix_bias + h)
        m_t = g @ self.decoder_weight + self.decoder_bias
        encoded = self.encoder * x_t.unsqueeze(-1)
        return m_t, torch.cat([window[..., 1:], encoded.unsqueeze(-1)], -1)


@dataclass(frozen=True)
class WeightFile:
    """A weight file's name under ``lra_snn/neurons/sdn_weights/``, or a path to one: text ending in .json."""

    def accepts(self, value: object) -> bool:
        return isinstance(value, str) and value.endswith(".json") and len(value) > len(".json")

    def describe(self) -> str:
        return "the name of a weight file under lra_snn/neurons/sdn_weights/ (or a path to one), ending in .json"


def weight_path(weights: str) -> Path:
    """A bare file name is a shipped file, under ``WEIGHTS_DIR``; anything else a path."""
    path = Path(weights).expanduser()
    return WEIGHTS_DIR / path if path.name == weights else path


def read_weights(path: Path) -> dict[str, Any]:
    """The weight file at ``path``, refused when missing (naming the command that writes it) or of
    another format or architecture."""
    if not path.is_file():
        writes = TRAIN_COMMAND if path == WEIGHTS_DIR / DEFAULT_WEIGHTS else f'{TRAIN_COMMAND} ARGS="--out {path}"'
        raise FileNotFoundError(
            f"SDN weight file {path} not found: the membrane predictor has not been trained; `{writes}` trains it"
        )
    stored = json.loads(path.read_text(encoding="utf-8"))
    expected = {"format": WEIGHTS_FORMAT, "width": WIDTH, "kernel": KERNEL}
    found = {
        "format": stored.get("format"),
        **{key: stored.get("architecture", {}).get(key) for key in ("width", "kernel")},
    }
    if found != expected:
        raise ValueError(
            f"SDN weight file {path} holds {found}, this code reads {expected}; retrain it: `{TRAIN_COMMAND}`"
        )
    return stored


class SurrogateDynamicNeuron(Neuron):
    """The SpikingSSMs neuron ``s_t = H(m_t + x_t - V_th)``, ``m`` predicted by the frozen SDN.

    ``weights``: the weight file (``DEFAULT_WEIGHTS``, the shipped tau = 0.125 predictor); its LIF's
    ``tau`` and ``v_th`` are recorded there, and ``v_th`` must equal the latter (a predictor models one
    LIF). ``surrogate``: the spike's surrogate gradient (the paper's triangle by default)."""

    option_rules: ClassVar[Mapping[str, Rule]] = {
        "weights": WeightFile(),
        "v_th": POSITIVE,
        "surrogate": OneOf(SURROGATES),
    }

    def __init__(
        self, d_model: int, *, weights: str = DEFAULT_WEIGHTS, v_th: float = 1.0, surrogate: str = "triangle"
    ) -> None:
        super().__init__(d_model)
        self.check_options(weights=weights, v_th=v_th, surrogate=surrogate)
        path = weight_path(weights)
        stored = read_weights(path)
        lif = stored["lif"]
        if float(v_th) != lif["v_th"]:
            raise ValueError(
                f"SurrogateDynamicNeuron: v_th={v_th} but {path} predicts the LIF with v_th={lif['v_th']}; "
                f'train one for it: `{TRAIN_COMMAND} ARGS="--v-th {v_th} --out <file>"`'
            )
        self.weights = weights
        self.tau = float(lif["tau"])
        self.v_th = float(v_th)
        self.surrogate = surrogate
        self.predictor = MembranePredictor(stored["weights"], stored["architecture"]["norm_eps"])
        # True: fire the exact LIF's spikes instead (how much of a model's accuracy the approximation
        # carries, ``lra_snn.training.surrogate_agreement.exact_neurons``); a switch, not an option
        self.use_exact = False

    def membrane(self, x: Tensor) -> Tensor:
        """The predicted ``m`` (B, L, D) for all steps at once, each channel its own sequence, no gradient."""
        self._check_input(x)
        batch, length, channels = x.shape
        with torch.no_grad():
            sequences = x.detach().transpose(1, 2).reshape(batch * channels, length)
            m = self.predictor(sequences)
        return m.reshape(batch, channels, length).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        if self.use_exact:
            return self._record(self.exact_spikes(x))
        return self._record(spike(self.membrane(x) + x - self.v_th, self.surrogate))

    def exact_spikes(self, x: Tensor) -> Tensor:
        """The spikes of the LIF the SDN approximates, on the same input ``x`` (B, L, D), with its gradient
        (``lra_snn.ops.hard_reset_scan``: the exact hard-reset LIF, the reset detached)."""
        return hard_reset_scan(x, self.v_th, self.tau, self.surrogate)[0]

    def membrane_step(self, x_t: Tensor, window: Tensor) -> tuple[Tensor, Tensor]:
        """``m_t`` (B, D) from the state and the state moved on by ``x_t``, no gradient."""
        with torch.no_grad():
            return self.predictor.step(x_t.detach(), window)

    def forward_sequential(self, x: Tensor) -> Tensor:
        self._check_input(x)
        window = self.init_state(x.shape[0], x.device, x.dtype)
        spikes = []
        for x_t in x.unbind(1):
            m_t, window = self.membrane_step(x_t, window)
            spikes.append(spike(m_t + x_t - self.v_th, self.surrogate))
        return self._record(torch.stack(spikes, 1))

    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """The encoded inputs of the last ``KERNEL`` steps per channel, zeros: (B, D, WIDTH, KERNEL)."""
        return self.predictor.init_state((batch, self.d_model), device, dtype)

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        m_t, state = self.membrane_step(x_t, state)
        return self._record(spike(m_t + x_t - self.v_th, self.surrogate)), state

    def macs_per_step(self) -> int:
        """144, the SDN evaluated with each BatchNorm folded into the conv before it: the encoder (8), the
        depthwise conv over the last 8 encoded inputs (8 x 8), the 1x1 mix (8 x 8) and the decoder (8).
        The residual, the biases, the ReLUs and ``+ x_t`` are additions or comparisons."""
        return WIDTH + WIDTH * KERNEL + WIDTH * WIDTH + WIDTH
