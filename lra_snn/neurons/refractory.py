"""Refractory LIF with trainable threshold, solved in parallel by boundary compression (SPikE-SSM).

SPikE-SSM (arXiv 2410.17268). This is OUR RECONSTRUCTION from the paper's abstract (its full
equations were not available): a reset-refractory neuron, trainable thresholds and refractory
magnitudes, and a parallel boundary-compression solver (docs/neurons.md, section 3). Per channel,
trainable ``V_th > 0`` and ``rho >= 0``, fixed ``beta = 1 - 1/tau`` and ``gamma``:

    u_t = beta * (u_{t-1} - V_th * s_{t-1}) + x_t        soft reset
    r_t = gamma * r_{t-1} + rho * s_{t-1}                refractory trace
    s_t = H(u_t - V_th - r_t)

With ``u'`` the reset-free potential, ``s = F(s) := H(u' - V_th - k * s)`` where
``(k * s)_t = sum_{i<t} (V_th beta^(t-i) + rho gamma^(t-1-i)) s_i``. F is causal and antitone,
so ``s^(0) = H(u' - V_th)``, ``s^(m+1) = F(s^(m))`` brackets the solution (even iterates from
above, odd from below), makes at least the first m+1 steps exact after m iterations, and stops
when two iterates agree (then exactly the sequential solution). ``s^(L-1)`` is therefore exact on
all L steps and ``s^(L) = s^(L-1)``: at most L iterations detect convergence, by exact equality of
two spike trains (no tolerance). The neuron iterates to convergence (the precise neuron); a cap
is a speed option for training only (``train_max_iters``), never applied in evaluation mode.

Two iterates that agree on steps ``[0, p)`` are both exact there (F is causal), so an uncapped
solve may finish the spike train with the time loop from ``p`` (``loop_ratio``) and go on iterating
from that train: the next iteration confirms it (a fixed point of F, so the same spikes the
iteration would reach), or else fixes a longer prefix. On the CPU the loop is compiled (numba) and
costs under a tenth of an iteration, so it solves the whole train and one iteration checks it
(without numba, a loop of small tensor operations takes over after the first iteration from about
a thousand batch x channels on); on CUDA the solver only iterates.

On float32/float64 CPU tensors with numba, ``solver="auto"`` (uncapped) skips the iteration
altogether: one compiled time loop from step 0 computes the spikes and margins of the definition
(bit-identical to the sequential form), and its reverse-time backward the parallel form's gradient
(``lra_snn.ops.refractory_iteration.sequential``; the spikes inside the reset and refractory terms
detached, ``V_th`` and ``rho`` differentiable). The solver's statistics then report no iteration and
L loop steps; ``solver="iterate"`` keeps the boundary-compression iteration (and its statistics) on
every device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lra_snn.config.rules import DROPOUT, POSITIVE, SIZE_OR_NULL, Number, OneOf, Rule
from lra_snn.neurons.base import Neuron
from lra_snn.ops import dispatch
from lra_snn.ops.leaky_integrate import leaky_integrate
from lra_snn.ops.refractory_iteration import refractory_iteration
from lra_snn.ops.refractory_iteration.loop import loop_is_compiled, refractory_loop
from lra_snn.ops.refractory_iteration.naive import refractory_margin
from lra_snn.ops.refractory_iteration.sequential import refractory_lif_compiled
from lra_snn.ops.surrogate import SURROGATES, spike
from lra_snn.optim.groups import tag


def _inverse_softplus(value: float) -> float:
    """The raw parameter whose softplus is ``value`` (> 0)."""
    return value + math.log(-math.expm1(-value))


# Cost of a step of the time loop over that of a step of one parallel iteration (``loop_ratio``).
# Compiled loop (CPU, float32/float64, numba), one thread: 0.056-0.089 (B x D in {2 x 64, 8 x 64,
# 32 x 128}, L from 100 to 16,384), so it solves the whole train and one iteration checks it.
_COMPILED_LOOP_RATIO = 0.1
# Loop of PyTorch operations: batch x channels at which a step costs as much as a step of one
# iteration, by device type; with B x D columns the ratio is _LOOP_BREAK_EVEN / (B x D). CPU, one
# thread: a loop step took 27-41 us, an iteration 0.024-0.06 us per step and column (B x D in
# {8 x 64, 32 x 128}, L in {1024, 4096}). CUDA is unmeasured, so the solver only iterates there.
_LOOP_BREAK_EVEN = {"cpu": 1000.0}
SOLVERS = ("auto", "iterate")


class BoundaryCompression(NamedTuple):
    """Result of the iteration: the last iterate, its predecessor's traces, and convergence."""

    spikes: Tensor  # s^(m) = F(s^(m-1)), (B, L, D)
    previous: Tensor  # s^(m-1), the spike train whose kernel response gave s^(m)
    reset_trace: Tensor  # sum_{i<t} beta^(t-i) s^(m-1)_i
    refractory_trace: Tensor  # sum_{i<t} gamma^(t-1-i) s^(m-1)_i
    iterations: int  # m, the number of kernel convolutions performed
    converged: bool  # s^(m) == s^(m-1): then s^(m) is the sequential solution
    loop_steps: int  # steps the time loop solved between iterations (0: iteration alone)


def _first_change(update: Tensor, spikes: Tensor) -> int | None:
    """The first step where two spike trains (B, L, D) differ in any channel, or None when equal."""
    changed = (update != spikes).any(0).any(-1)
    return int(changed.to(torch.int8).argmax()) if bool(changed.any()) else None


@torch.no_grad()
def boundary_compression(
    excess: Tensor,
    v_th: Tensor,
    rho: Tensor,
    beta: float,
    gamma: float,
    max_iters: int | None,
    backend: str | None = None,
    loop_ratio: float | None = None,
) -> BoundaryCompression:
    """Iterate ``s^(m+1) = F(s^(m))`` from ``s^(0) = H(excess)`` until two iterates agree.

    ``excess = u' - V_th`` (B, L, D); ``v_th``, ``rho`` per channel (D,). ``max_iters``: None
    iterates until two iterates are equal, which takes at most L iterations (module docstring); an
    integer stops there even when unconverged (a training-only speed option). ``backend``
    (None | "torch" | "triton"): each iteration's (``lra_snn.ops.refractory_iteration``; one Triton
    kernel pass where the dispatch picks it, else traces by leaky integration). ``loop_ratio``
    (uncapped only; None: never), the cost of a step of the time loop over that of a step of one
    iteration: below 1 the loop solves the whole train first and the iteration checks it; else, when
    an iteration fixes fewer than ``L / loop_ratio`` new steps (iterating on would cost more than
    looping over them), the time loop solves the rest from the first step the last two iterates
    disagree on, and the iteration goes on from its result (module docstring).
    """
    if max_iters is not None and max_iters < 1:
        raise ValueError(f"max_iters must be a positive integer or None, got {max_iters}")
    length = excess.shape[1]
    cap = length if max_iters is None else max_iters
    spikes = (excess >= 0).to(excess.dtype)
    iteration = loop_steps = fixed = 0
    if max_iters is None and loop_ratio is not None and loop_ratio < 1:  # the loop costs less than one iteration
        zero = torch.zeros_like(excess[:, 0])
        spikes = refractory_loop(0, excess, spikes, (zero, zero), v_th, rho, beta, gamma)
        loop_steps = length
    while True:
        iteration += 1
        update, reset_trace, refractory_trace = refractory_iteration(
            excess, spikes, v_th, rho, beta, gamma, backend=backend
        )
        change = _first_change(update, spikes)
        if change is None or iteration == cap:
            converged = change is None
            if max_iters is None and not converged:
                raise RuntimeError(
                    f"boundary compression did not converge in L = {length} iterations, which the causal "
                    "argument rules out: the per-iteration op is not causal (a bug in lra_snn.ops.refractory_iteration)"
                )
            return BoundaryCompression(update, spikes, reset_trace, refractory_trace, iteration, converged, loop_steps)
        if max_iters is None and loop_ratio is not None and (change - fixed) * loop_ratio < length:
            traces = (reset_trace[:, change], refractory_trace[:, change])
            update = refractory_loop(change, excess, spikes, traces, v_th, rho, beta, gamma)
            loop_steps += length - change
        fixed = change
        spikes = update


class RefractoryState(NamedTuple):
    """Streaming state after a step, each (B, D): potential ``u_t``, refractory trace ``r_t``, spikes."""

    potential: Tensor
    refractory: Tensor
    spikes: Tensor


class RefractoryLIF(Neuron):
    """Reset-refractory LIF (our reconstruction of SPikE-SSM) with trainable ``V_th`` and ``rho``.

    ``V_th = softplus(raw_v_th)`` (init ``v_th_init``) and ``rho = softplus(raw_rho)`` (init
    ``rho_init``) keep both positive; ``beta = 1 - 1/tau`` and ``gamma`` are fixed. ``forward``
    iterates the boundary compression to convergence, so its spikes are those of the time loop;
    ``train_max_iters`` (None by default) caps the iterations in training mode only, a speed
    option: evaluation mode (validation, test, inference) always converges. ``solver``: "auto" lets
    an uncapped solve run the time loop where that is cheaper (the CPU: the whole forward and
    backward as one compiled loop where numba imports; module docstring), "iterate" only iterates;
    both give the same spikes. Each forward sets ``iterations_used`` (0 when the compiled loop ran),
    ``loop_steps`` (steps the time loop solved) and ``unconverged_fraction`` (fraction of
    neuron-steps where the last two iterates differ; 0.0 when converged).

    Gradients: the spikes inside the reset and refractory terms are detached, but ``V_th`` and
    ``rho`` multiplying them stay differentiable. Detaching the whole term (as the decoupled
    reset does with its threshold) would leave ``rho`` without any gradient, since rho enters
    the dynamics only through the refractory term. ``backend``: None (Triton kernels on CUDA, the
    compiled loop on the CPU), "torch", "triton" or "compiled" (see ``lra_snn.ops.dispatch``).
    """

    supported_backends = ("torch", "triton", "compiled")
    option_rules: ClassVar[Mapping[str, Rule]] = {
        "tau": Number(1.0),  # the decay beta = 1 - 1/tau in [0, 1)
        "gamma": DROPOUT,  # the refractory trace's decay, in [0, 1)
        "v_th_init": POSITIVE,
        "rho_init": POSITIVE,
        "train_max_iters": SIZE_OR_NULL,  # null: to convergence in training too (evaluation always is)
        "solver": OneOf(SOLVERS),
        "surrogate": OneOf(SURROGATES),
    }

    def __init__(
        self,
        d_model: int,
        *,
        tau: float = 2.0,
        gamma: float = 0.5,
        v_th_init: float = 1.0,
        rho_init: float = 0.5,
        train_max_iters: int | None = None,
        solver: str = "auto",
        surrogate: str = "atan",
        backend: str | None = None,
    ) -> None:
        super().__init__(d_model)
        self.check_options(
            tau=tau,
            gamma=gamma,
            v_th_init=v_th_init,
            rho_init=rho_init,
            train_max_iters=train_max_iters,
            solver=solver,
            surrogate=surrogate,
        )
        self.solver = solver
        self.beta = 1.0 - 1.0 / tau
        self.gamma = float(gamma)
        self.train_max_iters = train_max_iters
        self.surrogate = surrogate
        self.backend = backend
        self.raw_v_th = tag(nn.Parameter(torch.full((d_model,), _inverse_softplus(v_th_init))), "dynamics")
        self.raw_rho = tag(nn.Parameter(torch.full((d_model,), _inverse_softplus(rho_init))), "dynamics")
        self.iterations_used: int | None = None
        self.loop_steps: int | None = None
        self.unconverged_fraction: float | None = None

    @property
    def v_th(self) -> Tensor:
        """Per-channel threshold ``softplus(raw_v_th)`` > 0."""
        return F.softplus(self.raw_v_th)

    @property
    def rho(self) -> Tensor:
        """Per-channel refractory magnitude ``softplus(raw_rho)`` > 0."""
        return F.softplus(self.raw_rho)

    def _solve(self, x: Tensor) -> tuple[Tensor, BoundaryCompression]:
        """Margins ``u_t - V_th - r_t`` (differentiable) from the boundary-compression iteration."""
        self._check_channels(x)
        v_th, rho = self.v_th.to(x.dtype), self.rho.to(x.dtype)
        excess = leaky_integrate(x, self.beta, backend=self.backend) - v_th
        cap = self.train_max_iters if self.training else None
        loop_ratio = self._loop_ratio(excess) if self.solver == "auto" else None
        solution = boundary_compression(
            excess.detach(), v_th.detach(), rho.detach(), self.beta, self.gamma, cap, self.backend, loop_ratio
        )
        margin = refractory_margin(excess, v_th, rho, solution.reset_trace, solution.refractory_trace)
        return margin, solution

    @staticmethod
    def _loop_ratio(excess: Tensor) -> float | None:
        """The time loop's cost per step over an iteration's for ``excess`` (B, L, D), None: iterate only."""
        if loop_is_compiled(excess):
            return _COMPILED_LOOP_RATIO
        break_even = _LOOP_BREAK_EVEN.get(excess.device.type)
        return None if break_even is None else break_even / (excess.shape[0] * excess.shape[2])

    def _runs_compiled_loop(self, x: Tensor) -> bool:
        """Whether ``forward`` runs the whole compiled time loop: an uncapped ``solver="auto"`` solve on
        float32/float64 CPU tensors where numba imports (``backend="compiled"`` forces it there)."""
        capped = self.training and self.train_max_iters is not None
        if self.solver != "auto" or capped or self.backend not in (None, "compiled"):
            return False
        if self.backend is None and x.device.type != "cpu":
            return False
        chosen = dispatch.select_backend(
            "refractory_lif", [x], self.backend, "no Triton kernel runs the whole time loop", compiled_unsupported=None
        )
        return chosen == "compiled"

    def _compiled_loop(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Spikes (differentiable) and margins of the compiled time loop; sets the solver's statistics
        (no iteration, L loop steps, converged)."""
        self._check_channels(x)
        spikes, margin = refractory_lif_compiled(
            x, self.v_th.to(x.dtype), self.rho.to(x.dtype), self.beta, self.gamma, self.surrogate
        )
        self.iterations_used, self.loop_steps, self.unconverged_fraction = 0, x.shape[1], 0.0
        return spikes, margin

    def forward(self, x: Tensor) -> Tensor:
        """Spikes (B, L, D) of the input currents ``x`` (B, L, D), in parallel over time."""
        if self._runs_compiled_loop(x):
            return self._record(self._compiled_loop(x)[0])
        margin, solution = self._solve(x)
        self.iterations_used = solution.iterations
        self.loop_steps = solution.loop_steps
        self.unconverged_fraction = (solution.spikes != solution.previous).float().mean().item()
        return self._record(spike(margin, self.surrogate))

    def margin(self, x: Tensor) -> Tensor:
        """``u_t - V_th - r_t`` (B, L, D) from the parallel form, without autograd."""
        with torch.no_grad():
            return self._compiled_loop(x)[1] if self._runs_compiled_loop(x) else self._solve(x)[0]

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> RefractoryState:
        zeros = torch.zeros(batch, self.d_model, device=device, dtype=dtype)
        return RefractoryState(zeros, zeros, zeros)

    def _advance(self, x_t: Tensor, state: RefractoryState, v_th: Tensor, rho: Tensor) -> RefractoryState:
        """One step of the definition with the reset and refractory spikes detached."""
        previous = state.spikes.detach()
        potential = self.beta * (state.potential - v_th * previous) + x_t
        refractory = self.gamma * state.refractory + rho * previous
        return RefractoryState(potential, refractory, spike(potential - v_th - refractory, self.surrogate))

    def step(self, x_t: Tensor, state: RefractoryState) -> tuple[Tensor, RefractoryState]:
        """One time step: ``x_t`` (B, D) -> spikes (B, D) and the new state."""
        state = self._advance(x_t, state, self.v_th.to(x_t.dtype), self.rho.to(x_t.dtype))
        return state.spikes, state

    def _loop(self, x: Tensor) -> tuple[list[RefractoryState], Tensor, Tensor]:
        """The definition as a time loop: the state after every step, and ``V_th``, ``rho`` used."""
        self._check_channels(x)
        v_th, rho = self.v_th.to(x.dtype), self.rho.to(x.dtype)
        state = self.init_state(x.shape[0], x.device, x.dtype)
        states = []
        for x_t in x.unbind(1):
            state = self._advance(x_t, state, v_th, rho)
            states.append(state)
        return states, v_th, rho

    def run_sequential(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Spikes and margins ``u_t - V_th - r_t`` (B, L, D) from the time loop."""
        states, v_th, _ = self._loop(x)
        margins = torch.stack([s.potential - v_th - s.refractory for s in states], 1)
        return torch.stack([s.spikes for s in states], 1), margins

    def forward_sequential(self, x: Tensor) -> Tensor:
        """Spikes from the plain time loop (the definition); same values and gradients as ``forward``
        run to convergence."""
        return self._record(torch.stack([s.spikes for s in self._loop(x)[0]], 1))

    def macs_per_step(self) -> int:
        """2: the membrane and refractory decays."""
        return 2
