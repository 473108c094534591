"""Parallel Resonate-and-Fire (PRF) neuron (arXiv 2410.03530; docs/neurons.md, section 2).

Complex membrane without explicit reset, per channel ``A = exp(Delta * (-1/tau + i*theta))``:
``z_t = A * z_{t-1} + Delta * x_t``, ``s_t = H(Re z_t - V_th)``. The parallel form takes the spikes
from one op (``lra_snn.ops.prf_spikes``): on the CPU the complex recurrence and the threshold as one
compiled time loop (numba), on CUDA (or when forced) ``Re z`` by the Triton complex scan, and with
``backend="torch"`` by the causal convolution of x with ``K[t] = Delta * exp(-Delta*t/tau) *
cos(Delta*theta*t)`` by FFT, then the spike function; gradients reach ``log_Delta`` and ``log_theta`` in
every case. The step form keeps ``z = u + i*r`` as two real states.

Parameters as the paper stores them (its Listing 2, "Simplified PyTorch-like Implementation of PRF
Neuron", and Table 8): per channel ``log_dt`` (here ``log_delta``) uniform in ``[log Delta_min, log
Delta_max]`` = ``[log 1e-3, log 1e-1]``, and ``log_theta = log(theta_max * u)`` with u uniform, so
``theta = exp(log_theta)`` is uniform in ``(0, theta_max]`` at init and stays positive in training;
``tau = 2`` and ``V_th = 1`` fixed. The listing writes the range as ``2*pi / fr_scale``; the per-task
``theta_max`` values (ListOps pi/6, Text pi/8, Retrieval pi/7, Image 8*pi = 2*pi/0.25, Pathfinder
2*pi/0.6) are its Tables 17-21.

``reset=True`` is the paper's "PRF with reset" ablation, defined here (docs/neurons.md, section 2)
as the same membrane plus the soft-reset offset of the decoupled-reset LIF with decay ``Re(A)``:
``b_t = Re(A) * (b_{t-1} + V_th * s_{t-1})``, ``s_t = H(Re z_t - V_th - b_t)``; the reset carries
no gradient (as in the decoupled reset), so the parallel form (``Re z`` from ``lra_snn.ops.prf_membrane``,
then ``lra_snn.ops.threshold_scan``) is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from lra_snn.config.rules import POSITIVE, Flag, OneOf, Rule
from lra_snn.neurons.base import Neuron
from lra_snn.ops.prf_membrane import prf_membrane
from lra_snn.ops.prf_membrane.naive import prf_dynamics
from lra_snn.ops.prf_spikes import prf_spikes
from lra_snn.ops.surrogate import SURROGATES, spike
from lra_snn.ops.threshold_scan import threshold_scan
from lra_snn.optim.groups import tag


class PRFState(NamedTuple):
    """Streaming state after a step, each (B, D): ``Re z``, ``Im z``, reset offset, spikes."""

    real: Tensor
    imag: Tensor
    offset: Tensor
    spikes: Tensor


class PRF(Neuron):
    """Resonate-and-fire neuron with trainable per-channel ``log_Delta`` and ``log_theta``.

    ``theta_max`` (> 0; default pi/6, the paper's ListOps value) sets the init range of
    ``theta = exp(log_theta)``, uniform in ``(0, theta_max]``, and is task-specific (Text pi/8,
    Retrieval pi/7, Image 8*pi, Pathfinder 2*pi/0.6): set it in the config. ``log_Delta`` starts
    uniform in ``[log delta_min, log delta_max]``. A state dict from the earlier parameterisation
    (a ``theta`` tensor instead of ``log_theta``) is refused with an error that says so.
    Computation runs in the input dtype, promoted to at least float32. ``backend``: None (the
    Triton complex scan on CUDA, else the compiled loop on the CPU where numba imports, else FFT),
    "torch" (FFT), "triton" or "compiled" (see ``lra_snn.ops.dispatch``).
    """

    supported_backends = ("torch", "triton", "compiled")
    option_rules: ClassVar[Mapping[str, Rule]] = {
        "theta_max": POSITIVE,  # theta is stored as log_theta
        "tau": POSITIVE,
        "v_th": POSITIVE,
        "delta_min": POSITIVE,
        "delta_max": POSITIVE,
        "reset": Flag(),
        "surrogate": OneOf(SURROGATES),
    }

    def __init__(
        self,
        d_model: int,
        *,
        theta_max: float = math.pi / 6,
        tau: float = 2.0,
        v_th: float = 1.0,
        delta_min: float = 1e-3,
        delta_max: float = 1e-1,
        reset: bool = False,
        surrogate: str = "atan",
        backend: str | None = None,
    ) -> None:
        super().__init__(d_model)
        options = {"theta_max": theta_max, "tau": tau, "v_th": v_th, "delta_min": delta_min, "delta_max": delta_max}
        self.check_options(**options, reset=reset, surrogate=surrogate)
        if delta_min > delta_max:
            raise ValueError(f"PRF: delta_min={delta_min} exceeds delta_max={delta_max}")
        self.tau = float(tau)
        self.v_th = float(v_th)
        self.reset = reset
        self.surrogate = surrogate
        self.backend = backend
        log_delta = torch.empty(d_model).uniform_(math.log(delta_min), math.log(delta_max))
        self.log_delta = tag(nn.Parameter(log_delta), "dynamics")
        # u in (0, 1]: theta_max * u is never 0, so log_theta is finite
        self.log_theta = tag(nn.Parameter(torch.log(theta_max * (1.0 - torch.rand(d_model)))), "dynamics")

    @property
    def theta(self) -> Tensor:
        """Per-channel rotation frequency ``exp(log_theta)`` > 0 (differentiable)."""
        return torch.exp(self.log_theta)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        if prefix + "theta" in state_dict and prefix + "log_theta" not in state_dict:
            raise RuntimeError(
                f"PRF state {prefix}theta comes from an earlier version that stored theta itself; this version stores "
                f"{prefix}log_theta (theta = exp(log_theta), the PRF paper's Listing 2), and its optimizer state does "
                "not carry over: retrain the run (its checkpoint cannot be resumed or evaluated with this code)"
            )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _log_delta_and_theta(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """``log_Delta`` and ``theta = exp(log_theta)`` per channel in ``dtype``, differentiable."""
        return self.log_delta.to(dtype), torch.exp(self.log_theta.to(dtype))

    def _dynamics(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """``Delta``, ``Re A = exp(-Delta/tau) cos(Delta theta)`` and ``Im A``, per channel in ``dtype``."""
        return prf_dynamics(*self._log_delta_and_theta(dtype), self.tau)

    def _arguments(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x``, ``log_Delta`` and ``theta`` in x's dtype promoted to at least float32 (the ops' inputs),
        differentiable."""
        self._check_channels(x)
        dtype = torch.promote_types(x.dtype, torch.float32)
        return x.to(dtype), *self._log_delta_and_theta(dtype)

    def _excess(self, x: Tensor) -> Tensor:
        """``Re z_t - V_th`` (B, L, D) in x's dtype promoted to at least float32, differentiable in x
        and the dynamics."""
        return prf_membrane(*self._arguments(x), self.tau, backend=self.backend) - self.v_th

    def _reset(self, excess: Tensor) -> tuple[Tensor, Tensor]:
        """Spikes and reset offsets ``b`` of ``excess`` (the reset ablation), reset detached."""
        decay = self._dynamics(excess.dtype)[1].detach()
        return threshold_scan(excess, self.v_th, decay, self.surrogate, backend=self.backend)

    def forward(self, x: Tensor) -> Tensor:
        """Spikes (B, L, D) of the input currents ``x`` (B, L, D), in parallel over time."""
        if self.reset:
            spikes = self._reset(self._excess(x))[0]
        else:
            spikes = prf_spikes(*self._arguments(x), self.tau, self.v_th, self.surrogate, backend=self.backend)
        return self._record(spikes.to(x.dtype))

    def margin(self, x: Tensor) -> Tensor:
        """``Re z_t - V_th - b_t`` (B, L, D) from the parallel form, without autograd."""
        with torch.no_grad():
            excess = self._excess(x)
            return excess - self._reset(excess)[1] if self.reset else excess

    def run_sequential(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The definition: the complex recurrence as a time loop; spikes and margins (B, L, D)."""
        self._check_channels(x)
        dtype = torch.promote_types(x.dtype, torch.float32)
        delta, real_a, imag_a = self._dynamics(dtype)
        rotation = torch.complex(real_a, imag_a)
        decay = real_a.detach()
        z = torch.zeros(x.shape[0], self.d_model, dtype=rotation.dtype, device=x.device)
        offset = torch.zeros(x.shape[0], self.d_model, dtype=dtype, device=x.device)
        s_t = torch.zeros_like(offset)
        spikes, margins = [], []
        for x_t in x.to(dtype).unbind(1):
            z = rotation * z + delta * x_t
            if self.reset:
                offset = decay * (offset + self.v_th * s_t.detach())
            margin = z.real - self.v_th - offset
            s_t = spike(margin, self.surrogate)
            spikes.append(s_t)
            margins.append(margin)
        return torch.stack(spikes, 1).to(x.dtype), torch.stack(margins, 1)

    def forward_sequential(self, x: Tensor) -> Tensor:
        """Spikes from the plain time loop (the definition); same values and gradients as ``forward``."""
        return self._record(self.run_sequential(x)[0])

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> PRFState:
        zeros = torch.zeros(batch, self.d_model, device=device, dtype=torch.promote_types(dtype, torch.float32))
        return PRFState(zeros, zeros, zeros, zeros)

    def steps(self, x: Tensor, state: PRFState) -> tuple[Tensor, PRFState]:
        """The step form over a chunk ``x`` (B, T, D): without reset, on the compiled path, the spikes op's
        forward loop started from the state (``lra_snn.ops.prf_spikes.compiled.prf_steps_compiled``, the
        step's own operations); else ``step`` per step."""
        dtype = state.real.dtype
        if self.reset or not self._steps_compiled("prf_spikes", x.to(dtype), tuple(state)):
            return super().steps(x, state)
        from lra_snn.ops.prf_spikes.compiled import prf_steps_compiled

        self._check_channels(x)
        log_delta, theta = self._log_delta_and_theta(dtype)  # as ``_dynamics``
        spikes, real, imag = prf_steps_compiled(
            x.to(dtype), state.real, state.imag, log_delta, theta, self.tau, self.v_th
        )
        return spikes.to(x.dtype), PRFState(real, imag, state.offset, spikes[:, -1].clone())

    def step(self, x_t: Tensor, state: PRFState) -> tuple[Tensor, PRFState]:
        """One time step with two real states: ``x_t`` (B, D) -> spikes (B, D) and the new state."""
        delta, p, q = self._dynamics(state.real.dtype)
        real = p * state.real - q * state.imag + delta * x_t.to(state.real.dtype)
        imag = q * state.real + p * state.imag
        offset = p.detach() * (state.offset + self.v_th * state.spikes.detach()) if self.reset else state.offset
        spikes = spike(real - self.v_th - offset, self.surrogate)
        return spikes.to(x_t.dtype), PRFState(real, imag, offset, spikes)

    def macs_per_step(self) -> int:
        """5: the 2x2 rotation of the two real states by ``A`` (4) and ``Delta x_t`` (1); 6 with reset
        (the offset decay ``Re(A) b``)."""
        return 6 if self.reset else 5

    def dynamics_ops_per_step(self) -> tuple[int, int]:
        """(5, 3), the PRF paper's own count (Table 23, "5 mt E_Mul + 3 mt E_AC"): the five products of
        ``macs_per_step`` and the three additions of ``u_t = p u - q r + Delta x``, ``r_t = q u + p r``;
        (6, 4) with reset (the offset's decay and its addition)."""
        return (6, 4) if self.reset else (5, 3)
