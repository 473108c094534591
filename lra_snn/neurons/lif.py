"""Soft-reset LIF neuron trained in parallel by the decoupled reset (PRF paper, arXiv 2410.03530).

Definition (docs/neurons.md, section 1), beta = 1 - 1/tau, u_0 = s_0 = 0:
``u_t = beta * (u_{t-1} - V_th * s_{t-1}) + x_t``, ``s_t = H(u_t - V_th)``.
Parallel form, one op (``lra_snn.ops.lif``): the reset-free potential ``u'_t = beta * u'_{t-1} + x_t``
(leaky integration), then the threshold scan (reset offsets ``b``, no autograd) and
``s = H(u' - V_th - b)``; on CUDA all three run fused in one Triton kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor

from lra_snn.config.rules import POSITIVE, Flag, Number, OneOf, Rule
from lra_snn.neurons.base import Neuron
from lra_snn.ops.leaky_integrate import leaky_integrate
from lra_snn.ops.lif import lif
from lra_snn.ops.surrogate import SURROGATES, spike
from lra_snn.ops.threshold_scan import threshold_scan


class LIFState(NamedTuple):
    """Streaming state after a step: potential ``u_t`` (before its reset) and spikes ``s_t``, (B, D)."""

    potential: Tensor
    spikes: Tensor


class DecoupledResetLIF(Neuron):
    """LIF with soft reset; ``forward`` is the exact parallel (decoupled-reset) form.

    ``detach_reset=True`` (default, as in the paper): the reset term carries no gradient, so
    gradients flow through ``u'`` only. ``detach_reset=False``: gradients also flow through the
    spikes in the reset (full BPTT), computed in parallel by one reverse scan. ``backend``: None
    (Triton kernels on CUDA: the fused one when the reset is detached; the compiled loop, fused for
    either reset, on float32/float64 CPU tensors), "torch", "triton" or "compiled" (``lra_snn.ops.dispatch``).
    """

    supported_backends = ("torch", "triton", "compiled")
    option_rules: ClassVar[Mapping[str, Rule]] = {
        "tau": Number(1.0),  # the decay beta = 1 - 1/tau in [0, 1)
        "v_th": POSITIVE,
        "detach_reset": Flag(),
        "surrogate": OneOf(SURROGATES),
    }

    def __init__(
        self,
        d_model: int,
        *,
        tau: float = 2.0,
        v_th: float = 1.0,
        detach_reset: bool = True,
        surrogate: str = "atan",
        backend: str | None = None,
    ) -> None:
        super().__init__(d_model)
        self.check_options(tau=tau, v_th=v_th, detach_reset=detach_reset, surrogate=surrogate)
        self.beta = 1.0 - 1.0 / tau
        self.v_th = float(v_th)
        self.detach_reset = detach_reset
        self.surrogate = surrogate
        self.backend = backend

    def forward(self, x: Tensor) -> Tensor:
        """Spikes (B, L, D) of the input currents ``x`` (B, L, D), in parallel over time."""
        self._check_channels(x)
        spikes, count = lif(x, self.beta, self.v_th, self.surrogate, self.detach_reset, backend=self.backend)
        self.firing_rate = count.sum().float() / spikes.numel()
        return spikes

    def margin(self, x: Tensor) -> Tensor:
        """``u_t - V_th`` (B, L, D) from the parallel form, without autograd (for tests and analysis):
        the reset-free potential's excess minus the threshold scan's offsets."""
        self._check_channels(x)
        with torch.no_grad():
            excess = leaky_integrate(x, self.beta, backend=self.backend) - self.v_th
            return excess - threshold_scan(excess, self.v_th, self.beta, backend=self.backend)[1]

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> LIFState:
        zeros = torch.zeros(batch, self.d_model, device=device, dtype=dtype)
        return LIFState(zeros, zeros)

    def step(self, x_t: Tensor, state: LIFState) -> tuple[Tensor, LIFState]:
        """One time step: ``x_t`` (B, D) -> spikes (B, D) and the new state."""
        reset = state.spikes.detach() if self.detach_reset else state.spikes
        potential = self.beta * (state.potential - self.v_th * reset) + x_t
        spikes = spike(potential - self.v_th, self.surrogate)
        return spikes, LIFState(potential, spikes)

    def steps(self, x: Tensor, state: LIFState) -> tuple[Tensor, LIFState]:
        """The step form over a chunk ``x`` (B, T, D): on the compiled path one loop over the chunk in the
        step's own operations (``lra_snn.ops.lif.compiled.lif_steps_compiled``), else ``step`` per step."""
        if not self._steps_compiled("lif", x, state):
            return super().steps(x, state)
        from lra_snn.ops.lif.compiled import lif_steps_compiled

        spikes, potential, fired = lif_steps_compiled(x, state.potential, state.spikes, self.beta, self.v_th)
        return spikes, LIFState(potential, fired)

    def run_sequential(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The definition as a time loop: spikes and margins ``u_t - V_th``, both (B, L, D)."""
        spikes, potentials = self._step_through(x)
        return spikes, potentials - self.v_th

    def forward_sequential(self, x: Tensor) -> Tensor:
        """Spikes from the plain time loop (the definition); same values and gradients as ``forward``."""
        return self._record(self.run_sequential(x)[0])

    def macs_per_step(self) -> int:
        """1: the decay ``beta * (u_{t-1} - V_th s_{t-1})`` (the reset and ``+ x_t`` are additions)."""
        return 1
