"""Hard-reset LIF neuron of SpikingSSMs (Shen et al., "SpikingSSMs: Learning Long Sequences with Sparse
and Parallel Spiking State Space Models", AAAI 2025, arXiv 2408.14909), trained in parallel.

Definition (docs/neurons.md, section 8), u_0 = 0, multiplicative decay ``tau``:
``u_t = tau * u_{t-1} + x_t``, ``s_t = H(u_t - V_th)``, ``u_t <- (1 - s_t) * u_t`` (reset to 0). The spike
takes the surrogate gradient of ``u_t - V_th`` (the paper's piecewise quadratic: ``triangle``) and the
reset multiplies by the detached ``(1 - s_t)``, so no gradient flows back past a spike.
Parallel form, one op (``lra_snn.ops.hard_reset_scan``): the reset-free potential
``u'_t = tau * u'_{t-1} + x_t`` (leaky integration), the offsets ``b`` of the hard reset from one pass
over time without autograd, ``u = u' - b``, ``s = H(u - V_th)``; the backward is one reverse linear
scan with the per-step decay ``tau * (1 - s_t)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor

from lra_snn.config.rules import POSITIVE, Number, OneOf, Rule
from lra_snn.neurons.base import Neuron
from lra_snn.ops.hard_reset_scan import hard_reset_scan
from lra_snn.ops.surrogate import SURROGATES, spike


class HardResetState(NamedTuple):
    """Streaming state after a step: potential ``u_t`` (before its reset) and spikes ``s_t``, (B, D)."""

    potential: Tensor
    spikes: Tensor


class HardResetLIF(Neuron):
    """LIF with multiplicative decay and hard reset to 0; ``forward`` is the exact parallel form.

    ``backend``: None (Triton kernels on CUDA, the compiled loop on float32/float64 CPU tensors),
    "torch", "triton" or "compiled" (``lra_snn.ops.dispatch``).
    """

    supported_backends = ("torch", "triton", "compiled")
    option_rules: ClassVar[Mapping[str, Rule]] = {
        "tau": Number(0.0, 1.0, low_open=True),  # the decay multiplying u_{t-1}
        "v_th": POSITIVE,
        "surrogate": OneOf(SURROGATES),
    }

    def __init__(
        self,
        d_model: int,
        *,
        tau: float = 0.125,
        v_th: float = 1.0,
        surrogate: str = "triangle",
        backend: str | None = None,
    ) -> None:
        super().__init__(d_model)
        self.check_options(tau=tau, v_th=v_th, surrogate=surrogate)
        self.tau = float(tau)
        self.v_th = float(v_th)
        self.surrogate = surrogate
        self.backend = backend

    def forward(self, x: Tensor) -> Tensor:
        """Spikes (B, L, D) of the input currents ``x`` (B, L, D), in parallel over time."""
        self._check_channels(x)
        spikes, _ = hard_reset_scan(x, self.v_th, self.tau, self.surrogate, backend=self.backend)
        return self._record(spikes)

    def margin(self, x: Tensor) -> Tensor:
        """``u_t - V_th`` (B, L, D), the potential before its reset, from the parallel form without
        autograd (for tests and analysis)."""
        self._check_channels(x)
        with torch.no_grad():
            return hard_reset_scan(x, self.v_th, self.tau, self.surrogate, backend=self.backend)[1] - self.v_th

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> HardResetState:
        zeros = torch.zeros(batch, self.d_model, device=device, dtype=dtype)
        return HardResetState(zeros, zeros)

    def step(self, x_t: Tensor, state: HardResetState) -> tuple[Tensor, HardResetState]:
        """One time step: the previous step's reset, the decay and the input; ``x_t`` (B, D) -> spikes
        (B, D) and the new state."""
        after_reset = (1 - state.spikes.detach()) * state.potential
        potential = self.tau * after_reset + x_t
        spikes = spike(potential - self.v_th, self.surrogate)
        return spikes, HardResetState(potential, spikes)

    def steps(self, x: Tensor, state: HardResetState) -> tuple[Tensor, HardResetState]:
        """The step form over a chunk ``x`` (B, T, D): on the compiled path the op's forward loop started from
        the state (``lra_snn.ops.hard_reset_scan.compiled.hard_reset_steps_compiled``), else ``step`` per step."""
        if not self._steps_compiled("hard_reset_scan", x, state):
            return super().steps(x, state)
        from lra_snn.ops.hard_reset_scan.compiled import hard_reset_steps_compiled

        spikes, potentials = hard_reset_steps_compiled(x, state.potential, state.spikes, self.v_th, self.tau)
        return spikes, HardResetState(potentials[:, -1].clone(), spikes[:, -1].clone())

    def run_sequential(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The definition as a time loop: spikes and margins ``u_t - V_th``, both (B, L, D)."""
        spikes, potentials = self._step_through(x)
        return spikes, potentials - self.v_th

    def forward_sequential(self, x: Tensor) -> Tensor:
        """Spikes from the plain time loop (the definition); same values and gradients as ``forward``."""
        return self._record(self.run_sequential(x)[0])

    def macs_per_step(self) -> int:
        """1: the decay ``tau * u_{t-1}`` (the reset multiplies by a binary ``1 - s_t``, a selection, and
        ``+ x_t`` is an addition)."""
        return 1
