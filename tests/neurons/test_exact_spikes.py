"""Every neuron of the zoo computes exactly its paper's neuron: the default forward (the parallel
training form, in evaluation mode) gives the same spikes, bit for bit in float64, as a time loop
written here from the papers' equations (docs/neurons.md), independently of the package's own
sequential form.

Three kinds of input, each at odd lengths: random; near-threshold, where the loop places the
potential within 1e-9 of a threshold crossing (above or below) at about half the steps, which
exposes any reordering of the reset, refractory or decay terms that random inputs hide; and, for
the neurons with a state, a single step. Parameters are drawn away from their initial values, so
that per-channel quantities really differ between channels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from lra_snn.neurons import build_neuron
from lra_snn.neurons.base import Neuron
from lra_snn.neurons.ternary import TernarySpike

DTYPE = torch.float64
NEAR = 1e-9  # placed margins lie in [NEAR / 10, NEAR] on either side of the threshold
LENGTHS = (1, 17, 33)
CHANNELS = 5


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def uniform(shape, low: float, high: float, seed: int) -> Tensor:
    return torch.rand(shape, generator=generator(seed), dtype=DTYPE) * (high - low) + low


def placed_targets(shape, seed: int) -> tuple[Tensor, Tensor]:
    """Where to place a margin (about half the entries) and the signed margin to place there."""
    where = torch.rand(shape, generator=generator(seed), dtype=DTYPE) < 0.5
    sign = torch.where(torch.rand(shape, generator=generator(seed + 1), dtype=DTYPE) < 0.5, -1.0, 1.0)
    size = uniform(shape, NEAR / 10, NEAR, seed + 2)
    return where, sign * size


# --------------------------------------------------------------------------- time loops from the papers
#
# A causal loop is a step function ``(state, x_t) -> (margin_t, spikes_t, state)`` together with
# ``affine(state) -> (offset, gain)`` such that ``margin_t = offset + gain * x_t``: the near-threshold
# inputs solve that for x_t. Spikes fire where the margin is >= 0.


@dataclass
class CausalLoop:
    init: Callable[[int], object]
    affine: Callable[[object], tuple[Tensor, Tensor]]
    step: Callable[[object, Tensor], tuple[Tensor, Tensor, object]]

    def run(self, x: Tensor) -> tuple[Tensor, Tensor]:
        state = self.init(x.shape[0])
        margins, spikes = [], []
        for x_t in x.unbind(1):
            margin, s, state = self.step(state, x_t)
            margins.append(margin)
            spikes.append(s)
        return torch.stack(spikes, 1), torch.stack(margins, 1)

    def near_threshold(self, x: Tensor, seed: int) -> Tensor:
        """``x`` with about half its entries replaced so that the margin there is +-[1e-10, 1e-9]."""
        where, target = placed_targets(x.shape, seed)
        state = self.init(x.shape[0])
        steps = []
        for t, x_t in enumerate(x.unbind(1)):
            offset, gain = self.affine(state)
            x_t = torch.where(where[:, t], (target[:, t] - offset) / gain, x_t)
            steps.append(x_t)
            state = self.step(state, x_t)[2]
        return torch.stack(steps, 1)


def lif_loop(neuron) -> CausalLoop:
    """PRF paper, eq. 3-4: ``u_t = beta (u_{t-1} - V_th s_{t-1}) + x_t``, ``s_t = H(u_t - V_th)``."""
    beta, v_th = 1 - 1 / 2.0, 1.0
    assert neuron.beta == beta and neuron.v_th == v_th

    def init(batch):
        return torch.zeros(batch, CHANNELS, dtype=DTYPE), torch.zeros(batch, CHANNELS, dtype=DTYPE)

    def affine(state):
        u, s = state
        return beta * (u - v_th * s) - v_th, torch.ones_like(u)

    def step(state, x_t):
        u, s = state
        u = beta * (u - v_th * s) + x_t
        s = (u - v_th >= 0).to(DTYPE)
        return u - v_th, s, (u, s)

    return CausalLoop(init, affine, step)


def lif_hard_loop(neuron) -> CausalLoop:
    """SpikingSSMs (arXiv 2408.14909): ``u_t = tau u_{t-1} + x_t``, ``s_t = H(u_t - V_th)``, ``u_t <- (1 - s_t) u_t``;
    the state is the potential after the reset."""
    tau, v_th = 0.125, 1.0
    assert neuron.tau == tau and neuron.v_th == v_th

    def init(batch):
        return torch.zeros(batch, CHANNELS, dtype=DTYPE)

    def affine(u):
        return tau * u - v_th, torch.ones_like(u)

    def step(u, x_t):
        u = tau * u + x_t
        s = (u - v_th >= 0).to(DTYPE)
        return u - v_th, s, (1 - s) * u

    return CausalLoop(init, affine, step)


def prf_loop(neuron) -> CausalLoop:
    """PRF paper, eq. 19: ``z_t = exp(Delta(-1/tau + i theta)) z_{t-1} + Delta x_t``, ``s_t = H(Re z_t - V_th)``,
    with ``Delta = exp(log_dt)`` and ``theta = exp(log_theta)`` (its Listing 2)."""
    delta = neuron.log_delta.detach().exp()
    theta = neuron.log_theta.detach().exp()
    rotation = torch.exp(delta * torch.complex(torch.full_like(delta, -1 / 2.0), theta))

    def init(batch):
        return torch.zeros(batch, CHANNELS, dtype=torch.complex128)

    def affine(z):
        return (rotation * z).real - 1.0, delta.expand_as(z.real)

    def step(z, x_t):
        z = rotation * z + delta * x_t
        margin = z.real - 1.0
        return margin, (margin >= 0).to(DTYPE), z

    return CausalLoop(init, affine, step)


def refractory_loop(neuron) -> CausalLoop:
    """SPikE-SSM as reconstructed (docs/neurons.md, section 3): ``u_t = beta (u_{t-1} - V_th s_{t-1}) + x_t``,
    ``r_t = gamma r_{t-1} + rho s_{t-1}``, ``s_t = H(u_t - V_th - r_t)``, per-channel ``V_th`` and ``rho``."""
    beta, gamma = neuron.beta, neuron.gamma
    v_th, rho = neuron.v_th.detach(), neuron.rho.detach()

    def init(batch):
        zeros = torch.zeros(batch, CHANNELS, dtype=DTYPE)
        return zeros, zeros, zeros

    def affine(state):
        u, r, s = state
        return beta * (u - v_th * s) - v_th - (gamma * r + rho * s), torch.ones_like(u)

    def step(state, x_t):
        u, r, s = state
        u = beta * (u - v_th * s) + x_t
        r = gamma * r + rho * s
        margin = u - v_th - r
        s = (margin >= 0).to(DTYPE)
        return margin, s, (u, r, s)

    return CausalLoop(init, affine, step)


def sliding_psn_loop(neuron) -> CausalLoop:
    """PSN paper, sliding PSN: ``H_t = sum_{i<k} w_i x_{t-k+1+i} + b`` (zeros before t = 0), ``S = H(H)``."""
    w, b, k = neuron.weight.detach(), float(neuron.bias.detach()), neuron.k

    def init(batch):
        return torch.zeros(batch, k - 1, CHANNELS, dtype=DTYPE)

    def affine(window):
        return torch.einsum("bkd,k->bd", window, w[: k - 1]) + b, torch.full_like(window[:, 0], float(w[k - 1]))

    def step(window, x_t):
        recent = torch.cat([window, x_t.unsqueeze(1)], 1)
        h = torch.einsum("bkd,k->bd", recent, w) + b
        return h, (h >= 0).to(DTYPE), recent[:, 1:]

    return CausalLoop(init, affine, step)


def threshold_loop(v_th: float) -> CausalLoop:
    """Memoryless Heaviside ``s_t = H(x_t - V_th)``: Binary S4D (V_th = 0) and the SD-TCM spatial neuron (0.5)."""

    def step(state, x_t):
        return x_t - v_th, (x_t - v_th >= 0).to(DTYPE), state

    return CausalLoop(lambda batch: None, lambda state: (torch.full((1, CHANNELS), -v_th, dtype=DTYPE), 1.0), step)


def sdn_loop(neuron) -> CausalLoop:
    """SpikingSSMs' SDN neuron against its own definition (docs/neurons.md, section 9), since it approximates the
    hard-reset LIF rather than computing it: ``s_t = H(m_t + x_t - V_th)``, ``m_t`` the frozen predictor on the
    encoded inputs ``e = w_enc x`` of steps t-8 .. t-1 (zeros before the first), with the neuron's folded weights:
    ``h = ReLU(sum_k W_dw[:, k] e_{t-8+k} + b_dw)``, ``g = ReLU(W_mix h + b_mix + h)``, ``m_t = w_dec . g + b_dec``."""
    p, v_th = neuron.predictor, neuron.v_th

    def init(batch):
        return torch.zeros(batch, CHANNELS, *p.depthwise_weight.shape, dtype=DTYPE)  # (B, D, width, taps)

    def membrane(window):
        h = torch.relu(torch.einsum("bdck,ck->bdc", window, p.depthwise_weight) + p.depthwise_bias)
        g = torch.relu(torch.einsum("bdc,oc->bdo", h, p.mix_weight) + p.mix_bias + h)
        return torch.einsum("bdc,c->bd", g, p.decoder_weight) + p.decoder_bias

    def affine(window):
        return membrane(window) - v_th, torch.ones(window.shape[:2], dtype=DTYPE)

    def step(window, x_t):
        margin = membrane(window) + x_t - v_th
        encoded = torch.einsum("c,bd->bdc", p.encoder, x_t)
        return margin, (margin >= 0).to(DTYPE), torch.cat([window[..., 1:], encoded.unsqueeze(-1)], -1)

    return CausalLoop(init, affine, step)


def dsn_run(neuron, x: Tensor) -> tuple[Tensor, Tensor]:
    """DSN paper: ``a_t = conv_k(x)_t``, ``alpha_t = sigmoid(a_t)^(1/tau)``,
    ``h_t = alpha_t h_{t-1} + (1 - alpha_t) x_t``, ``s_t = clip(round(h_t), 0, N)`` with halves rounding
    up; the margin is the signed distance of ``h_t`` to the nearest crossing ``n - 1/2`` (n = 1 .. N),
    positive on the upper side."""
    w, bias, k, tau, levels = (
        neuron.decay_weight.detach(),
        neuron.decay_bias.detach(),
        neuron.kernel_size,
        neuron.tau,
        neuron.n_levels,
    )
    crossings = torch.arange(levels, dtype=DTYPE) + 0.5
    window = torch.zeros(x.shape[0], k - 1, CHANNELS, dtype=DTYPE)
    h = torch.zeros(x.shape[0], CHANNELS, dtype=DTYPE)
    spikes, margins = [], []
    for x_t in x.unbind(1):
        recent = torch.cat([window, x_t.unsqueeze(1)], 1)
        a = torch.einsum("bkd,dk->bd", recent, w) + bias
        alpha = torch.sigmoid(a) ** (1 / tau)
        h = alpha * h + (1 - alpha) * x_t
        spikes.append(torch.clamp(torch.floor(h + 0.5), 0, levels))
        distance = h.unsqueeze(-1) - crossings
        margins.append(distance.gather(-1, distance.abs().argmin(-1, keepdim=True)).squeeze(-1))
        window = recent[:, 1:]
    return torch.stack(spikes, 1), torch.stack(margins, 1)


def dsn_near_threshold(neuron, x: Tensor, seed: int) -> Tensor:
    """Newton steps on ``x_t`` (the decay depends on it) towards ``h_t = crossing + target`` at about half
    the entries; where Newton does not converge to 1e-13 the random input stays."""
    w, bias, k, tau = neuron.decay_weight.detach(), neuron.decay_bias.detach(), neuron.kernel_size, neuron.tau
    where, target = placed_targets(x.shape, seed)
    crossing = torch.randint(0, neuron.n_levels, x.shape, generator=generator(seed + 3)).to(DTYPE) + 0.5
    window = torch.zeros(x.shape[0], k - 1, CHANNELS, dtype=DTYPE)
    h = torch.zeros(x.shape[0], CHANNELS, dtype=DTYPE)
    steps = []
    for t, x_t in enumerate(x.unbind(1)):
        rest = torch.einsum("bkd,dk->bd", window, w[:, : k - 1]) + bias
        goal = crossing[:, t] + target[:, t]

        def membrane(v, rest=rest, h=h):
            alpha = torch.sigmoid(rest + w[:, k - 1] * v) ** (1 / tau)
            return alpha * h + (1 - alpha) * v, alpha

        v = goal.clone()
        for _ in range(60):
            value, alpha = membrane(v)
            slope = alpha * (1 - torch.sigmoid(rest + w[:, k - 1] * v)) / tau * w[:, k - 1] * (h - v) + (1 - alpha)
            v = v - (value - goal) / slope
        converged = (membrane(v)[0] - goal).abs() < 1e-13
        x_t = torch.where(where[:, t] & converged, v, x_t)
        steps.append(x_t)
        h = membrane(x_t)[0]
        window = torch.cat([window, x_t.unsqueeze(1)], 1)[:, 1:]
    return torch.stack(steps, 1)


def linear_psn_run(neuron, x: Tensor) -> tuple[Tensor, Tensor]:
    """PSN paper: ``H_t = sum_j W_eff[t, j] x_j + b_t`` step by step, ``S = H(H)``; the masked PSN's
    ``W_eff = W * (lambda M_k + 1 - lambda)`` with ``M_k[t, j] = [t - k + 1 <= j <= t]``."""
    weight, bias = linear_psn_matrix(neuron), neuron.bias.detach()
    margins = torch.stack([torch.einsum("j,bjd->bd", weight[t], x) + bias[t] for t in range(x.shape[1])], 1)
    return (margins >= 0).to(DTYPE), margins


def linear_psn_matrix(neuron) -> Tensor:
    weight = neuron.weight.detach()
    if not hasattr(neuron, "lambda_"):
        return weight
    steps = torch.arange(weight.shape[0])
    lag = steps.unsqueeze(1) - steps.unsqueeze(0)
    band = ((lag >= 0) & (lag < neuron.k)).to(DTYPE)
    return weight * (neuron.lambda_ * band + (1 - neuron.lambda_))


def linear_psn_near_threshold(neuron, x: Tensor, seed: int) -> Tensor:
    """A target H equal to ``W_eff x + b`` except at about half the entries, where it is +-[1e-10, 1e-9]:
    for a causal (lower-triangular) ``W_eff`` the placed inputs are solved step by step, the others stay;
    for a dense one ``W_eff X = H - b`` is solved as a whole."""
    weight, bias = linear_psn_matrix(neuron), neuron.bias.detach()
    where, target = placed_targets(x.shape, seed)
    if not torch.equal(weight, weight.tril()):
        h = torch.where(where, target, torch.einsum("tj,bjd->btd", weight, x) + bias[:, None])
        return torch.linalg.solve(weight, h - bias[:, None])
    x = x.clone()
    for t in range(x.shape[1]):
        earlier = torch.einsum("j,bjd->bd", weight[t, :t], x[:, :t]) + bias[t]
        x[:, t] = torch.where(where[:, t], (target[:, t] - earlier) / weight[t, t], x[:, t])
    return x


def ternary_run(neuron, x: Tensor) -> tuple[Tensor, Tensor]:
    """GSU's ternary spikes: per step ``sign(y) [|y| >= 0.15 max_c |y_c|]``; margin ``|y| - threshold``."""
    margins, spikes = [], []
    for y in x.unbind(1):
        threshold = neuron.fraction * y.abs().max(-1, keepdim=True).values
        margins.append(y.abs() - threshold)
        spikes.append(torch.sign(y) * (y.abs() - threshold >= 0).to(DTYPE))
    return torch.stack(spikes, 1), torch.stack(margins, 1)


def ternary_near_threshold(neuron, x: Tensor, seed: int) -> Tensor:
    """Per step, the largest |y| stays; about half of the others move to ``threshold +- [1e-10, 1e-9]``."""
    where, target = placed_targets(x.shape, seed)
    top = x.abs().amax(-1, keepdim=True)
    is_top = x.abs() == top
    placed = x.sign() * (neuron.fraction * top + target)
    return torch.where(where & ~is_top, placed, x)


# --------------------------------------------------------------------------- the zoo's neurons


def perturbed(neuron: Neuron, seed: int) -> Neuron:
    """``neuron`` in float64 and evaluation mode, its parameters moved off their initial values."""
    neuron = neuron.double().eval()
    with torch.no_grad():
        for index, p in enumerate(neuron.parameters()):
            p.add_(0.05 * torch.randn(p.shape, generator=generator(seed + index), dtype=DTYPE))
    return neuron


def build(name: str, length: int, seed: int) -> Neuron:
    torch.manual_seed(seed)
    if name == "masked_psn_causal":
        neuron = build_neuron("masked_psn", CHANNELS, T=length, k=4)
        neuron.lambda_ = 1.0
    elif name == "masked_psn_ramp":
        neuron = build_neuron("masked_psn", CHANNELS, T=length, k=4)
        neuron.lambda_ = 0.5
    elif name == "psn":
        neuron = build_neuron("psn", CHANNELS, T=length)
    elif name == "sd_tcm_threshold":
        neuron = build_neuron("heaviside", CHANNELS, v_th=0.5)
    elif name == "sliding_psn":
        neuron = build_neuron("sliding_psn", CHANNELS, k=4)  # conf/model/neuron/sliding_psn.yaml
    elif name == "gsu_ternary":
        neuron = TernarySpike(CHANNELS)
    else:
        neuron = build_neuron(name, CHANNELS, **({"v_th": 0.0} if name == "heaviside" else {}))
    return perturbed(neuron, seed)


# name -> (time loop, near-threshold construction, input scale, input bias)
Run = Callable[[Neuron, Tensor], tuple[Tensor, Tensor]]
Place = Callable[[Neuron, Tensor, int], Tensor]


def causal(loop: Callable[[Neuron], CausalLoop]) -> tuple[Run, Place]:
    return (lambda n, x: loop(n).run(x)), (lambda n, x, seed: loop(n).near_threshold(x, seed))


CASES: dict[str, tuple[Run, Place, float, float]] = {
    "lif": (*causal(lif_loop), 1.0, 0.6),
    "lif_hard": (*causal(lif_hard_loop), 1.0, 0.6),
    "prf": (*causal(prf_loop), 40.0, 20.0),
    "refractory_lif": (*causal(refractory_loop), 1.5, 0.8),
    "psn": (linear_psn_run, linear_psn_near_threshold, 2.0, 0.5),
    "masked_psn_causal": (linear_psn_run, linear_psn_near_threshold, 2.0, 0.5),
    "masked_psn_ramp": (linear_psn_run, linear_psn_near_threshold, 2.0, 0.5),
    "sliding_psn": (*causal(sliding_psn_loop), 1.0, 0.3),
    "dsn": (dsn_run, dsn_near_threshold, 2.0, 1.0),
    "heaviside": (*causal(lambda n: threshold_loop(0.0)), 1.0, 0.0),
    "sdn": (*causal(sdn_loop), 1.0, 0.6),
    "sd_tcm_threshold": (*causal(lambda n: threshold_loop(0.5)), 1.0, 0.0),
    "gsu_ternary": (ternary_run, ternary_near_threshold, 1.0, 0.0),
}


def random_input(length: int, scale: float, bias: float, seed: int) -> Tensor:
    return torch.randn(3, length, CHANNELS, generator=generator(seed), dtype=DTYPE) * scale + bias


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_default_forward_equals_the_papers_time_loop_on_random_input(name, length):
    run, _, scale, bias = CASES[name]
    neuron = build(name, length, seed=10 + length)
    x = random_input(length, scale, bias, seed=20 + length)
    with torch.no_grad():
        spikes = neuron(x)
    expected, _ = run(neuron, x)
    assert spikes.dtype == DTYPE and torch.equal(spikes, expected)
    if length > 1:
        assert 0 < (expected != 0).double().mean() < 1, "the regime must exercise both outcomes"


@pytest.mark.parametrize("length", LENGTHS[1:])
@pytest.mark.parametrize("name", sorted(CASES))
def test_default_forward_equals_the_papers_time_loop_within_1e_9_of_threshold(name, length):
    run, place, scale, bias = CASES[name]
    neuron = build(name, length, seed=30 + length)
    x = place(neuron, random_input(length, scale, bias, seed=40 + length), 50 + length)
    expected, margins = run(neuron, x)
    near = margins.abs() <= NEAR
    assert near.double().mean() > 0.2, f"only {near.double().mean():.0%} of the margins were placed near threshold"
    assert (margins[near] < 0).any() and (margins[near] >= 0).any()
    with torch.no_grad():
        assert torch.equal(neuron(x), expected)


def test_near_threshold_inputs_catch_a_neuron_that_drops_a_decay():
    """The test has teeth: a LIF loop whose reset forgets one power of beta (the variant the decoupled
    reset warns about) differs from the package's LIF within 1e-9 of threshold."""
    neuron = build("lif", 33, seed=3)
    loop = lif_loop(neuron)
    x = loop.near_threshold(random_input(33, 1.0, 0.6, seed=4), seed=5)

    def no_decay_reset(state, x_t):
        u, s = state
        u = 0.5 * u - s + x_t  # beta * u - V_th * s: the reset not decayed
        s = (u - 1.0 >= 0).to(DTYPE)
        return u - 1.0, s, (u, s)

    wrong, _ = CausalLoop(loop.init, loop.affine, no_decay_reset).run(x)
    with torch.no_grad():
        assert not torch.equal(neuron(x), wrong)


def test_every_registered_neuron_is_covered():
    from lra_snn.neurons import NEURONS

    covered = {name.removesuffix("_causal").removesuffix("_ramp") for name in CASES}
    assert set(NEURONS) <= covered, sorted(set(NEURONS) - covered)
    assert math.isclose(TernarySpike(CHANNELS).fraction, 0.15)
