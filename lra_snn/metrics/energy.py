"""Firing rates, synaptic operations and estimated energy of a model's test pass, under two named
conventions (docs/energy.md; docs/neurons.md, "Accounting").

Both price operations at 45 nm CMOS (Horowitz 2014): 0.9 pJ per accumulate (AC, an addition: a spike
meeting a weight) and 4.6 pJ per multiply-accumulate (MAC, a real value meeting a weight). Counted per
layer over the true (unpadded) steps of each sequence, from forward hooks.

**Ours** (``test/energy_mj``, the primary figure) counts what serial inference computes:

- spiking layer (a ``Neuron`` not inside another one): spikes, integer spikes counting their value and
  ternary spikes their magnitude; firing rate = spikes / (steps x channels);
- ``nn.Linear``: if its input holds only non-negative integers (the spikes the zoo's neurons emit),
  ACs = sum of the input spikes x out_features; otherwise MACs = steps x in_features x out_features.
  The backbone's input layer (``SequenceEncoder.encoder``) reads data and always counts MACs; an
  ``nn.Embedding`` is a table lookup and counts nothing;
- S4D convolution, counted in its recurrent form: per step and channel, each of the N/2 complex modes
  costs 8 real MACs (complex decay x state: 4, input weight x real input: 2, real part of C x state: 2),
  i.e. 4N per direction, plus 1 for ``D u``; the kernel generation (parameters only) is not counted;
- neuron dynamics: steps x channels x ``Neuron.macs_per_step()``: LIF 1, PRF 5 (6 with reset),
  refractory LIF 2, PSN T, masked PSN k once lambda = 1 (else T), sliding PSN k, DSN k + 2,
  memoryless threshold and ternary spikes 0; a wrapper such as ``PadToLength`` declares what it wraps;
- gated spiking unit (``lra_snn.models.gsu``): ``Ter(y) W`` costs one AC per spike and output,
  ``y Ter(W)`` one AC per step and non-zero ternary weight (additions of real values), the product of
  the two paths one MAC per step and channel.

**The PRF paper's** (``test/energy_prf_convention_mj``; arXiv 2410.03530, Tables 6, 7 and 23) differs in
four places: an S4D layer costs the dense ``H^2 + 2 D H + D^2`` MACs per step (``u = A u + B x``,
``y = C u + D x`` with H = d_state and D channels, once per layer); a neuron's dynamics cost its
``Neuron.dynamics_ops_per_step()``, multiplications at the MAC price and additions as ACs (PRF 5 and
3, the others their MACs); each GLU costs 3 MACs per output channel and step (``2D`` for the gate and
``D`` for the product); the SD-TCM block's two membrane shortcuts cost one AC per channel and step
each. Linear layers, the input layer and the GSU count as in ours.

Not counted under either: biases, norms, the backbone's residual additions, pooling, nonlinearities
(GELU, sigmoid, exp), and all memory traffic. Layers with parameters of any other type (e.g.
convolutions, none in the zoo) are not counted either, and ``EnergyMeter`` names them in a warning.
Energy per example (mJ) = (0.9 ACs + 4.6 MACs) pJ / examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from lra_snn.models.backbone import SequenceEncoder
from lra_snn.models.blocks import S4DBlock
from lra_snn.models.gsu import GatedSpikingUnit
from lra_snn.models.s4d import S4D
from lra_snn.models.sd_tcm import SDTCMBlock
from lra_snn.neurons import Neuron
from lra_snn.neurons.ternary import ternarize

AC_ENERGY_PJ = 0.9  # 45 nm, one accumulate
MAC_ENERGY_PJ = 4.6  # 45 nm, one multiply-accumulate
S4D_MACS_PER_MODE = 8  # real MACs per complex mode per step in the recurrent form (see module docstring)
GLU_MACS_PER_CHANNEL = 3  # PRF paper, Table 7: o = n * sigmoid(m) costs E_MAC 2D + E_M D per step
SD_TCM_SHORTCUTS = 2  # PRF paper: the SD-TCM block's two membrane-shortcut additions per channel and step
_NOT_COUNTED = (nn.Embedding, nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


def s4d_macs_per_step(layer: S4D) -> int:
    """MACs per step of an S4D layer over all its channels, in the recurrent form (module docstring)."""
    systems, modes = layer.kernel.A_imag.shape  # systems = directions x channels
    return systems * modes * S4D_MACS_PER_MODE + layer.D.numel()


def s4d_dense_macs_per_step(layer: S4D) -> int:
    """MACs per step of an S4D layer costed as a dense SSM, the PRF paper's convention (its Tables 6-7):
    ``H^2 + 2 D H + D^2`` with state size H = d_state (N real dimensions per channel) and D channels."""
    state = 2 * layer.kernel.A_imag.shape[1]
    channels = layer.D.numel()
    return state * state + 2 * channels * state + channels * channels


def energy_mj(acs: float, macs: float, ac_pj: float = AC_ENERGY_PJ, mac_pj: float = MAC_ENERGY_PJ) -> float:
    """Estimated energy in mJ of ``acs`` accumulates and ``macs`` multiply-accumulates."""
    return (ac_pj * acs + mac_pj * macs) * 1e-9


def holds_spikes(x: Tensor) -> bool:
    """True when every value is a non-negative integer (binary or integer spikes)."""
    return bool(((x >= 0) & (x == torch.round(x))).all())


@dataclass
class LayerCount:
    """What one layer did over the counted passes; sums over the true steps of every sequence."""

    kind: str  # "neuron", "linear", "input", "s4d", "gsu", "glu", "sd_tcm"
    spikes: float = 0.0  # neurons: emitted spikes (integer spikes count their value, ternary their magnitude)
    neuron_steps: float = 0.0  # neurons: steps x channels
    acs: float = 0.0  # ours (module docstring)
    macs: float = 0.0
    prf_acs: float = 0.0  # the PRF paper's convention
    prf_macs: float = 0.0

    def add_both(self, acs: float, macs: float) -> None:
        """Operations the two conventions count alike."""
        self.acs += acs
        self.macs += macs
        self.prf_acs += acs
        self.prf_macs += macs


def _outermost_neurons(model: nn.Module) -> list[tuple[str, Neuron]]:
    """Named ``Neuron`` modules that are not inside another ``Neuron`` (a wrapper counts, not what it wraps)."""
    found: list[tuple[str, Neuron]] = []
    for name, module in model.named_modules():
        if isinstance(module, Neuron) and not any(name.startswith(outer + ".") for outer, _ in found):
            found.append((name, module))
    return found


class OpCounter:
    """Forward hooks that count spikes, ACs and MACs per layer of ``model`` (see the module docstring).

    ``set_lengths(lengths)`` before each forward pass gives the true length of every sequence
    (None: every step counts); activations of shape (N, L, C) with N sequences are counted over
    their first ``lengths`` steps, other shapes over all their rows.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.layers: dict[str, LayerCount] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._lengths: Tensor | None = None

    # ------------------------------------------------------------------ hooks

    def attach(self) -> OpCounter:
        """Register the hooks and reset the counts."""
        self.detach()
        self.layers = {}
        input_layers = {id(m.encoder) for m in self.model.modules() if isinstance(m, SequenceEncoder)}
        neurons = _outermost_neurons(self.model)
        inside = tuple(name + "." for name, _ in neurons)
        for name, module in neurons:
            self._hook(name, module, "neuron", self._count_neuron)
        for name, module in self.model.named_modules():
            if name.startswith(inside):
                continue
            if isinstance(module, S4D):
                self._hook(name, module, "s4d", self._count_s4d)
            elif isinstance(module, GatedSpikingUnit):
                self._hook(name, module, "gsu", self._count_gsu)
            elif isinstance(module, nn.GLU):
                self._hook(name, module, "glu", self._count_glu)
            elif isinstance(module, SDTCMBlock):
                self._hook(name, module, "sd_tcm", self._count_sd_tcm)
            elif isinstance(module, nn.Linear):
                kind = "input" if id(module) in input_layers else "linear"
                self._hook(name, module, kind, self._count_linear)
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def set_lengths(self, lengths: Tensor | None) -> None:
        self._lengths = None if lengths is None else lengths.reshape(-1)

    def _hook(self, name: str, module: nn.Module, kind: str, count: Callable) -> None:
        self.layers[name] = LayerCount(kind)
        record = self.layers[name]
        self._handles.append(module.register_forward_hook(lambda m, args, out: count(record, m, args[0], out)))

    # ------------------------------------------------------------------ counting

    def _valid(self, x: Tensor) -> Tensor:
        """(rows, 1) float weights, 1 for each counted row of ``x`` flattened to (rows, channels)."""
        lengths = self._lengths
        if x.dim() == 3 and lengths is not None and x.shape[0] == lengths.numel():
            steps = torch.arange(x.shape[1], device=x.device)
            return (steps[None, :] < lengths.to(x.device)[:, None]).reshape(-1, 1).to(torch.float64)
        return torch.ones(x[..., 0].numel(), 1, dtype=torch.float64, device=x.device)

    def _steps(self, x: Tensor) -> float:
        return float(self._valid(x).sum())

    def _counted_sum(self, x: Tensor) -> tuple[float, float]:
        """Sum of the values of ``x`` over its counted rows, and the number of those rows."""
        valid = self._valid(x)
        flat = x.detach().reshape(-1, x.shape[-1]).to(torch.float64)
        return float((flat * valid).sum()), float(valid.sum())

    def _count_neuron(self, record: LayerCount, module: Neuron, x: Tensor, spikes: Tensor) -> None:
        total, steps = self._counted_sum(spikes.abs())
        neuron_steps = steps * spikes.shape[-1]
        record.spikes += total
        record.neuron_steps += neuron_steps
        record.macs += neuron_steps * module.macs_per_step()
        multiplications, additions = module.dynamics_ops_per_step()
        record.prf_macs += neuron_steps * multiplications
        record.prf_acs += neuron_steps * additions

    def _count_linear(self, record: LayerCount, module: nn.Linear, x: Tensor, out: Tensor) -> None:
        if record.kind == "linear" and holds_spikes(x.detach()):
            record.add_both(self._counted_sum(x)[0] * module.out_features, 0.0)
        else:
            record.add_both(0.0, self._steps(x) * module.in_features * module.out_features)

    def _count_s4d(self, record: LayerCount, module: S4D, x: Tensor, out: Tensor) -> None:
        steps = self._steps(x)
        record.macs += steps * s4d_macs_per_step(module)
        record.prf_macs += steps * s4d_dense_macs_per_step(module)

    def _count_gsu(self, record: LayerCount, module: GatedSpikingUnit, y: Tensor, out: Tensor) -> None:
        spikes = self._counted_sum(ternarize(y.detach(), module.spike.fraction).abs())[0]
        steps = self._steps(y)
        nonzero_weights = float(module.ternary_weight().abs().sum())
        record.add_both(spikes * module.weight.shape[1] + steps * nonzero_weights, steps * out.shape[-1])

    def _count_glu(self, record: LayerCount, module: nn.GLU, x: Tensor, out: Tensor) -> None:
        record.prf_macs += self._steps(out) * GLU_MACS_PER_CHANNEL * out.shape[-1]

    def _count_sd_tcm(self, record: LayerCount, module: SDTCMBlock, x: Tensor, out: Tensor) -> None:
        record.prf_acs += self._steps(out) * SD_TCM_SHORTCUTS * out.shape[-1]

    # ------------------------------------------------------------------ summaries

    def firing_rates(self) -> dict[str, float]:
        """Firing rate of each spiking layer that ran (spikes per neuron per step)."""
        return {
            name: c.spikes / c.neuron_steps
            for name, c in self.layers.items()
            if c.kind == "neuron" and c.neuron_steps > 0
        }

    def mean_firing_rate(self) -> float | None:
        """All spikes over all neuron-steps of the spiking layers (a mean weighted by neuron count); None
        without any."""
        neurons = [c for c in self.layers.values() if c.kind == "neuron" and c.neuron_steps > 0]
        if not neurons:
            return None
        return sum(c.spikes for c in neurons) / sum(c.neuron_steps for c in neurons)

    def total_acs(self) -> float:
        return sum(c.acs for c in self.layers.values())

    def total_macs(self) -> float:
        return sum(c.macs for c in self.layers.values())

    def total_prf_acs(self) -> float:
        """ACs under the PRF paper's convention (module docstring)."""
        return sum(c.prf_acs for c in self.layers.values())

    def total_prf_macs(self) -> float:
        """MACs under the PRF paper's convention (module docstring)."""
        return sum(c.prf_macs for c in self.layers.values())


def uncounted_layers(model: nn.Module) -> list[str]:
    """Modules with parameters of their own that the counter neither counts nor deliberately skips."""
    covered = [name for name, m in model.named_modules() if isinstance(m, (Neuron, S4D))]
    inside = tuple(name + "." for name in covered)
    # S4DBlock's own parameter is SpikingSSMs' threshold scale, skipped like a norm's
    counted = (Neuron, S4D, nn.Linear, GatedSpikingUnit, S4DBlock, *_NOT_COUNTED)
    return [
        f"{name} ({type(module).__name__})"
        for name, module in model.named_modules()
        if next(module.parameters(recurse=False), None) is not None
        and not isinstance(module, counted)
        and not name.startswith(inside)
    ]


class EnergyMeter(pl.Callback):
    """During ``trainer.test``: per-layer firing rates, ACs, MACs and energy per example, logged as
    ``test/firing_rate`` (all spiking layers; only when the model has some), ``test/firing_rate/<layer>``,
    ``test/acs``, ``test/macs`` and ``test/energy_mj`` (ACs, MACs and energy per test example, our
    convention), and ``test/acs_prf_convention``, ``test/macs_prf_convention`` and
    ``test/energy_prf_convention_mj`` (the same under the PRF paper's convention)."""

    def __init__(self, ac_energy_pj: float = AC_ENERGY_PJ, mac_energy_pj: float = MAC_ENERGY_PJ) -> None:
        super().__init__()
        if ac_energy_pj < 0 or mac_energy_pj < 0:
            raise ValueError(f"EnergyMeter: energies per operation must be >= 0, got {ac_energy_pj}, {mac_energy_pj}")
        self.ac_energy_pj = ac_energy_pj
        self.mac_energy_pj = mac_energy_pj
        self.counter: OpCounter | None = None
        self.examples = 0

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        skipped = uncounted_layers(pl_module)
        if skipped:
            rank_zero_warn(f"EnergyMeter does not count the operations of: {', '.join(skipped)}")
        self.counter = OpCounter(pl_module).attach()
        self.examples = 0

    def on_test_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: dict, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not isinstance(batch, dict) or "inputs" not in batch:
            raise TypeError(
                f"EnergyMeter expects batches as dicts with 'inputs' (and 'lengths', 'labels' where "
                f"the task has them), got {type(batch).__name__}; remove callbacks.energy otherwise"
            )
        self._started().set_lengths(batch.get("lengths"))
        labels = batch.get("labels")
        self.examples += int((labels if labels is not None else batch["inputs"]).shape[0])

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        counter = self._started()
        device = pl_module.device

        def total(value: float) -> float:
            tensor = torch.tensor(value, dtype=torch.float64, device=device)
            return float(trainer.strategy.reduce(tensor, reduce_op="sum"))

        examples = total(self.examples)
        if examples == 0:
            return
        acs, macs = total(counter.total_acs()), total(counter.total_macs())
        prf_acs, prf_macs = total(counter.total_prf_acs()), total(counter.total_prf_macs())
        metrics = {
            "test/acs": acs / examples,
            "test/macs": macs / examples,
            "test/energy_mj": energy_mj(acs, macs, self.ac_energy_pj, self.mac_energy_pj) / examples,
            "test/acs_prf_convention": prf_acs / examples,
            "test/macs_prf_convention": prf_macs / examples,
            "test/energy_prf_convention_mj": energy_mj(prf_acs, prf_macs, self.ac_energy_pj, self.mac_energy_pj)
            / examples,
        }
        neurons = {name: c for name, c in counter.layers.items() if c.kind == "neuron"}
        spikes = {name: total(c.spikes) for name, c in neurons.items()}
        steps = {name: total(c.neuron_steps) for name, c in neurons.items()}
        for name in neurons:
            if steps[name] > 0:
                metrics[f"test/firing_rate/{name}"] = spikes[name] / steps[name]
        if sum(steps.values()) > 0:
            metrics["test/firing_rate"] = sum(spikes.values()) / sum(steps.values())
        for key, value in metrics.items():
            pl_module.log(key, value)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started().detach()

    def _started(self) -> OpCounter:
        """The counter of the running test pass (created in ``on_test_start``)."""
        if self.counter is None:
            raise RuntimeError("EnergyMeter: a test batch arrived before on_test_start attached the counter")
        return self.counter

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self.counter is not None:
            self.counter.detach()
