"""The interface every neuron follows (docs/neurons.md, "Interface every neuron follows").

Input ``x`` is (B, L, D). Each neuron computes one function in three forms that agree:
``forward_sequential``, the sequential reference (the definition as a plain time loop);
``forward``, the parallel training form; and the step form, ``init_state`` then ``step`` on one
step at a time with an explicit state, for serial inference (a neuron that cannot stream raises a
clear error there). Each forward records the firing rate (mean spikes per neuron per step; integer
spikes count their value) for the sparsity and energy accounting.

A neuron also describes itself to the code around it, which therefore names no neuron class:
``macs_per_step`` to the energy accounting (``lra_snn.metrics.energy``), ``options_at_length``
(from ``fixed_length``) to the speed benchmark (``lra_snn.cli.bench``), ``fixed_length`` also to
the padding wrapper (``lra_snn.neurons.fixed_length``), ``schedules`` to the training-schedule
callbacks (``lra_snn.training.callbacks``).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lra_snn.config.rules import Rule, rule_problems
from lra_snn.ops import dispatch


class Neuron(nn.Module, metaclass=ABCMeta):
    """Base class: subclasses implement the three forms and ``macs_per_step``, and call ``_record``
    on their spikes; a subclass missing any of them cannot be instantiated (``TypeError`` naming it).
    """

    #: True for a neuron built for exactly ``T`` steps (constructor argument ``T``, e.g. the PSN);
    #: the zoo runs it on shorter inputs through ``lra_snn.neurons.fixed_length.PadToLength``
    fixed_length: bool = False
    #: attributes that a training-schedule callback sets during training (the masked PSN's ``lambda_``)
    schedules: tuple[str, ...] = ()
    #: the backends ``forward`` can run on: "torch", and "triton" where it calls ops with Triton
    #: kernels (``lra_snn.ops``); the ``backend`` attribute is one of them or None (automatic)
    supported_backends: tuple[str, ...] = ("torch",)
    _backend: str | None = None

    #: the number of steps a fixed-length neuron is built for (None for the others)
    T: int | None = None
    #: the rule each constructor option follows (``lra_snn.config.rules``), by option name, for every
    #: keyword option but ``backend`` (which the base class checks): ``check_options`` applies them when
    #: the neuron is built, and the train config's validation to ``model.encoder.layer.neuron.<option>``
    #: before anything is built, where an option the constructor does not take is refused too
    option_rules: ClassVar[Mapping[str, Rule]] = {}

    def __init__(self, d_model: int) -> None:
        super().__init__()
        if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"{type(self).__name__}: d_model (channels) must be a positive integer, got {d_model!r}")
        self.d_model = d_model
        self.firing_rate: Tensor | None = None

    def check_options(self, **values: object) -> None:
        """Raise one ValueError naming every option of ``values`` that its rule in ``option_rules`` refuses."""
        problems = rule_problems(values, self.option_rules)
        if problems:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(problems))

    @property
    def backend(self) -> str | None:
        """Where ``forward`` runs its ops: None (Triton on CUDA tensors where a kernel covers the case,
        else PyTorch), or one of ``supported_backends`` forced (``lra_snn.ops.dispatch``)."""
        return self._backend

    @backend.setter
    def backend(self, value: str | None) -> None:
        if value is not None and value not in self.supported_backends:
            raise ValueError(
                f"{type(self).__name__}: backend must be None (automatic) or one of "
                f"{self.supported_backends}, got {value!r}"
            )
        self._backend = value

    @abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """Spikes (B, L, D) of the inputs ``x`` (B, L, D): the parallel training form."""

    @abstractmethod
    def forward_sequential(self, x: Tensor) -> Tensor:
        """The same spikes from the plain time loop: the sequential reference."""

    @abstractmethod
    def init_state(self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Any:
        """The step form's state before the first step of ``batch`` sequences."""

    @abstractmethod
    def step(self, x_t: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step of the step form: inputs ``x_t`` (B, D) -> spikes (B, D) and the next state."""

    def steps(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """The step form over a chunk ``x`` (B, T, D) of a stream, from ``state``: its spikes (B, T, D) and
        the state after it, the same as T calls of ``step``. Streaming reads a stream chunk by chunk in
        memory constant in its length; a neuron whose time loop is compiled runs a chunk in one call."""
        spikes = []
        for x_t in x.unbind(1):
            s_t, state = self.step(x_t, state)
            spikes.append(s_t)
        return torch.stack(spikes, 1), state

    def _steps_compiled(self, primitive: str, x: Tensor, state: tuple[Tensor, ...]) -> bool:
        """Whether ``steps`` may run a chunk through the compiled loop of op ``primitive``: no gradient is
        wanted of ``x`` or ``state``, and the dispatch picks the compiled path for the neuron's backend."""
        tensors = [x, *state]
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            return False
        if self.backend not in (None, "compiled"):
            return False
        return dispatch.select_backend(primitive, tensors, self.backend, compiled_unsupported=None) == "compiled"

    @abstractmethod
    def macs_per_step(self) -> int:
        """Multiply-accumulates of the dynamics per step and channel, as serial inference computes
        them (docs/neurons.md, "Accounting"); the synapses reading the spikes are counted apart."""

    def dynamics_ops_per_step(self) -> tuple[int, int]:
        """(multiplications, additions) of the dynamics per step and channel as the PRF paper prices
        them (arXiv 2410.03530, Table 23: multiplications at the MAC energy, additions as ACs); by
        default every MAC of ``macs_per_step`` counts as one multiplication, as that table does for
        LIF and the PSN family. ``lra_snn.metrics.energy`` uses it for the PRF-paper convention."""
        return self.macs_per_step(), 0

    @classmethod
    def options_at_length(cls, length: int) -> dict[str, Any]:
        """Constructor options (besides ``d_model``) that depend on the input length: ``T = length``
        for a fixed-length neuron, none otherwise."""
        return {"T": length} if cls.fixed_length else {}

    def _step_through(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The step form over all of ``x`` (B, L, D), from ``init_state``: the spikes and each step's
        ``state.potential``, both (B, L, D); the time loop of neurons whose state names its membrane
        potential ``potential``."""
        self._check_channels(x)
        state = self.init_state(x.shape[0], x.device, x.dtype)
        spikes, potentials = [], []
        for x_t in x.unbind(1):
            s_t, state = self.step(x_t, state)
            spikes.append(s_t)
            potentials.append(state.potential)
        return torch.stack(spikes, 1), torch.stack(potentials, 1)

    def _record(self, spikes: Tensor) -> Tensor:
        self.firing_rate = spikes.detach().float().mean()
        return spikes

    @staticmethod
    def _check_input(x: Tensor) -> None:
        if x.dim() != 3:
            raise ValueError(f"neuron input must be (batch, length, channels), got shape {tuple(x.shape)}")

    def _check_channels(self, x: Tensor) -> None:
        """``_check_input`` plus: the channel count equals the neuron's ``d_model`` (per-channel parameters)."""
        self._check_input(x)
        if x.shape[-1] != self.d_model:
            raise ValueError(
                f"{type(self).__name__} has d_model={self.d_model} channels, input has {x.shape[-1]} "
                f"(shape {tuple(x.shape)})"
            )
