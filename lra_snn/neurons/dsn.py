"""DSN: the dynamic-decay spiking neuron (docs/neurons.md, section 5).

Huang et al., "Parallel Training in Spiking Neural Networks" (arXiv 2602.01133): the reset is
removed and its role taken by an input-dependent decay,

    a_t = CausalDepthwiseConv1d_k(x)_t,   alpha_t = sigmoid(a_t) ** (1/tau),
    h_t = alpha_t h_{t-1} + (1 - alpha_t) x_t,   s_t = clip(round(h_t), 0, N),

so training is one first-order linear scan with per-step decay, run with the decay and the spike
as one op (``lra_snn.ops.dsn``; on CUDA one fused Triton kernel, on the CPU a compiled time loop), and
inference streams with O(1) state. Integer spikes use a straight-through rectangle surrogate; the
binary mode (N = 1) fires ``H(h - 0.5)`` with the ATan surrogate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lra_snn.config.rules import POSITIVE, SIZE, Flag, Rule
from lra_snn.neurons.base import Neuron
from lra_snn.ops.dsn import dsn
from lra_snn.ops.dsn.naive import decay_and_gain, fire
from lra_snn.ops.linear_scan import linear_scan
from lra_snn.optim.groups import tag


class DSNState(NamedTuple):
    """Step-form state: the membrane ``h`` (B, D) and the last k-1 inputs (B, k-1, D) for the conv."""

    h: Tensor
    window: Tensor


class DSN(Neuron):
    """Dynamic-decay spiking neuron with ``n_levels``-level integer spikes (or binary spikes).

    The decay conv is depthwise (one kernel of ``kernel_size`` taps and one bias per channel),
    causal (left zero padding of k-1), initialised like ``nn.Conv1d`` (uniform in
    +-1/sqrt(k)); its tensors are tagged ``"dynamics"``. ``binary=True`` sets N = 1 and fires
    ``H(h - 0.5)`` with the ATan surrogate (``n_levels`` is then not used). ``backend``: None (the
    fused Triton kernel on CUDA, the compiled loop on the CPU where numba imports), "torch", "triton"
    or "compiled" (see ``lra_snn.ops.dispatch``).
    """

    supported_backends = ("torch", "triton", "compiled")
    option_rules: ClassVar[Mapping[str, Rule]] = {
        "kernel_size": SIZE,
        "tau": POSITIVE,  # alpha = sigmoid(a) ** (1/tau)
        "n_levels": SIZE,
        "binary": Flag(),
    }

    def __init__(
        self,
        d_model: int,
        *,
        kernel_size: int = 4,
        tau: float = 0.25,
        n_levels: int = 4,
        binary: bool = False,
        backend: str | None = None,
    ) -> None:
        super().__init__(d_model)
        self.check_options(kernel_size=kernel_size, tau=tau, n_levels=n_levels, binary=binary)
        self.kernel_size = kernel_size
        self.tau = float(tau)
        self.binary = binary
        self.n_levels = 1 if binary else n_levels
        self.backend = backend
        bound = 1 / math.sqrt(kernel_size)
        self.decay_weight = tag(nn.Parameter(torch.empty(d_model, kernel_size).uniform_(-bound, bound)), "dynamics")
        self.decay_bias = tag(nn.Parameter(torch.empty(d_model).uniform_(-bound, bound)), "dynamics")

    def decay_logits(self, x: Tensor) -> Tensor:
        """``a = CausalDepthwiseConv1d_k(x)`` for all steps (B, L, D)."""
        self._check_channels(x)
        padded = F.pad(x.transpose(1, 2), (self.kernel_size - 1, 0))
        a = F.conv1d(padded, self.decay_weight.unsqueeze(1), self.decay_bias, groups=self.d_model)
        return a.transpose(1, 2)

    def potential(self, x: Tensor) -> Tensor:
        """Membrane ``h`` for all steps by one parallel linear scan with per-step decay."""
        alpha, gain = decay_and_gain(self.decay_logits(x), self.tau)
        return linear_scan(alpha, gain * x, backend=self.backend)

    def potential_sequential(self, x: Tensor) -> Tensor:
        """Membrane ``h`` by the plain time loop of the definition (conv taps before t = 0 are zero)."""
        self._check_channels(x)
        k = self.kernel_size
        padded = F.pad(x, (0, 0, k - 1, 0))
        h = torch.zeros_like(x[:, 0])
        steps = []
        for t in range(x.shape[1]):
            a_t = torch.einsum("bkd,dk->bd", padded[:, t : t + k], self.decay_weight) + self.decay_bias
            alpha_t, gain_t = decay_and_gain(a_t, self.tau)
            h = alpha_t * h + gain_t * x[:, t]
            steps.append(h)
        return torch.stack(steps, 1)

    def fire(self, h: Tensor) -> Tensor:
        """Spikes from the membrane: integer levels ``clip(round(h), 0, N)`` or binary ``H(h - 0.5)``."""
        return fire(h, self.n_levels, self.binary)

    def forward(self, x: Tensor) -> Tensor:
        return self._record(dsn(self.decay_logits(x), x, self.tau, self.n_levels, self.binary, backend=self.backend))

    def forward_sequential(self, x: Tensor) -> Tensor:
        return self._record(self.fire(self.potential_sequential(x)))

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> DSNState:
        return DSNState(
            torch.zeros(batch, self.d_model, device=device, dtype=dtype),
            torch.zeros(batch, self.kernel_size - 1, self.d_model, device=device, dtype=dtype),
        )

    def potential_step(self, x_t: Tensor, state: DSNState) -> tuple[Tensor, DSNState]:
        """One step of the membrane from ``x_t`` (B, D): O(1) work and state."""
        recent = torch.cat([state.window, x_t.unsqueeze(1)], 1)
        a_t = torch.einsum("bkd,dk->bd", recent, self.decay_weight) + self.decay_bias
        alpha_t, gain_t = decay_and_gain(a_t, self.tau)
        h = alpha_t * state.h + gain_t * x_t
        return h, DSNState(h, recent[:, 1:])

    def step(self, x_t: Tensor, state: DSNState) -> tuple[Tensor, DSNState]:
        h, state = self.potential_step(x_t, state)
        return self._record(self.fire(h)), state

    def macs_per_step(self) -> int:
        """``kernel_size + 2``: the decay conv (``kernel_size``) and ``alpha h + (1 - alpha) x`` (2)."""
        return self.kernel_size + 2
