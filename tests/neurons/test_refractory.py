"""Refractory LIF (docs/neurons.md, section 3, our reconstruction of SPikE-SSM): the boundary-compression
iteration brackets and reaches the time loop's solution; forms, potentials and gradients agree."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from lra_snn.neurons import build_neuron
from lra_snn.neurons.refractory import SOLVERS, RefractoryLIF, boundary_compression
from lra_snn.ops.leaky_integrate import leaky_integrate
from lra_snn.ops.linear_scan.naive import linear_scan_naive
from lra_snn.ops.refractory_iteration import loop as loop_module
from lra_snn.ops.refractory_iteration import refractory_iteration
from lra_snn.ops.refractory_iteration.loop import loop_is_compiled
from lra_snn.optim.groups import group_of

# input regime -> (scale, bias, lowest and highest accepted firing rate)
REGIMES = {"sparse": (0.4, 0.0, 0.003, 0.03), "dense": (2.0, 1.0, 0.3, 0.65)}
SHAPES = [(1, 1, 1), (2, 7, 3), (3, 33, 5), (2, 1031, 4)]


def gaussian_input(shape, scale, bias, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=generator, dtype=torch.float64) * scale + bias).to(dtype)


def make_refractory(d_model, train_max_iters=None, seed=0, solver="auto"):
    """Float64 neuron with per-channel V_th in [0.7, 1.3] and rho in [0.2, 1.0] (not the init),
    and a refractory decay gamma = 0.3 distinct from beta = 0.5 so that swapping them shows."""
    generator = torch.Generator().manual_seed(seed)
    neuron = RefractoryLIF(d_model, gamma=0.3, train_max_iters=train_max_iters, solver=solver).double()
    v_th = torch.rand(d_model, generator=generator, dtype=torch.float64) * 0.6 + 0.7
    rho = torch.rand(d_model, generator=generator, dtype=torch.float64) * 0.8 + 0.2
    with torch.no_grad():
        neuron.raw_v_th.copy_(v_th + torch.log(-torch.expm1(-v_th)))
        neuron.raw_rho.copy_(rho + torch.log(-torch.expm1(-rho)))
    return neuron


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("regime", sorted(REGIMES))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_three_forms_agree_in_float64_when_run_to_convergence(shape, regime, solver, run_steps):
    scale, bias, _, _ = REGIMES[regime]
    neuron = make_refractory(shape[-1], solver=solver)
    x = gaussian_input(shape, scale, bias)
    parallel = neuron(x)
    sequential, margin = neuron.run_sequential(x)
    assert parallel.shape == shape and parallel.dtype == torch.float64
    assert torch.equal(parallel, sequential)
    assert torch.equal(run_steps(neuron, x), sequential)
    torch.testing.assert_close(neuron.margin(x), margin.detach(), rtol=0, atol=1e-9)
    assert neuron.unconverged_fraction == 0.0
    if neuron._runs_compiled_loop(x):  # the whole compiled time loop: the definition's margins, no iteration
        assert torch.equal(neuron.margin(x), margin.detach())
        assert neuron.iterations_used == 0 and neuron.loop_steps == shape[1]
    else:
        assert 1 <= neuron.iterations_used <= shape[1]  # s^(L-1) is exact, so s^(L) = s^(L-1) at the latest


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_input_regimes_reach_their_firing_rates(regime):
    scale, bias, low, high = REGIMES[regime]
    neuron = make_refractory(16)
    spikes = neuron(gaussian_input((4, 256, 16), scale, bias, seed=1))
    assert low <= spikes.mean().item() <= high
    assert neuron.firing_rate.item() == pytest.approx(spikes.mean().item())


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_float32_forms_agree_with_the_float64_definition(regime, run_steps, compare_spike_trains):
    """float32 spikes may differ from the exact (float64) definition only at a step whose exact
    margin is within 1e-5 of the threshold, relative to max(1, |reset-free potential|) (the size
    of what float32 rounds); each row is compared up to its first disagreement, margins up to
    there to the same tolerance."""
    scale, bias, _, _ = REGIMES[regime]
    neuron32 = make_refractory(8).float()
    reference_neuron = copy.deepcopy(neuron32).double()
    x = gaussian_input((4, 1031, 8), scale, bias, dtype=torch.float32, seed=2)
    with torch.no_grad():
        reference, reference_margin = reference_neuron.run_sequential(x.double())
    reset_free = linear_scan_naive(torch.tensor(neuron32.beta, dtype=torch.float64), x.double())
    near = 1e-5 * reset_free.abs().clamp_min(1.0)
    with torch.no_grad():
        forms = {
            "parallel": (neuron32(x), neuron32.margin(x)),
            "sequential": neuron32.run_sequential(x),
            "step": (run_steps(neuron32, x), None),
        }
    for name, (spikes, margin) in forms.items():
        assert spikes.dtype == torch.float32, name
        comparable, diverged = compare_spike_trains(spikes, reference, reference_margin, near)
        assert diverged <= 0.1, name
        if margin is not None:
            error = (margin.double() - reference_margin).abs()
            assert (error <= near)[comparable].all(), name


def near_threshold_input(neuron, shape, seed=3):
    """Inputs putting ``u_t - r_t`` within 1e-9..1e-7 of ``V_th`` (either side) at about half the
    steps, from an independent loop of the definition; float64."""
    generator = torch.Generator().manual_seed(seed)
    planted = torch.rand(shape, generator=generator) < 0.5
    above = torch.rand(shape, generator=generator) < 0.5
    offset = torch.rand(shape, generator=generator, dtype=torch.float64) * 0.99e-7 + 1e-9
    offset = torch.where(above, offset, -offset)
    free = torch.randn(shape, generator=generator, dtype=torch.float64)
    v_th, rho = neuron.v_th.detach(), neuron.rho.detach()
    potential = refractory = fired = torch.zeros(shape[0], shape[2], dtype=torch.float64)
    inputs = []
    for t in range(shape[1]):
        carried = neuron.beta * (potential - v_th * fired)
        refractory = neuron.gamma * refractory + rho * fired
        x_t = torch.where(planted[:, t], v_th + refractory - carried + offset[:, t], free[:, t])
        potential = carried + x_t
        fired = (potential - v_th - refractory >= 0).double()
        inputs.append(x_t)
    return torch.stack(inputs, 1), planted, above


@pytest.mark.parametrize("solver", SOLVERS)
def test_inputs_near_the_threshold_give_identical_spikes(solver, run_steps):
    neuron = make_refractory(6, solver=solver)
    x, planted, above = near_threshold_input(neuron, (3, 400, 6))
    sequential, margin = neuron.run_sequential(x)
    assert (margin.detach().abs()[planted] < 1.1e-7).all() and planted.float().mean() > 0.4
    assert torch.equal(sequential[planted], above[planted].double())
    assert torch.equal(neuron(x), sequential)
    assert torch.equal(run_steps(neuron, x), sequential)


def iterates(neuron, x, count):
    """``s^(0) .. s^(count)`` of the boundary-compression iteration (each run afresh with that cap)."""
    with torch.no_grad():
        excess = leaky_integrate(x, neuron.beta) - neuron.v_th
        runs = [
            boundary_compression(excess, neuron.v_th, neuron.rho, neuron.beta, neuron.gamma, m)
            for m in range(1, count + 1)
        ]
    return [(excess >= 0).double()] + [run.spikes for run in runs]


def test_iterates_bracket_the_solution_and_fix_a_growing_prefix():
    neuron = make_refractory(8)
    x = gaussian_input((4, 200, 8), *REGIMES["dense"][:2], seed=4)
    solution = neuron.forward_sequential(x).detach()
    trail = iterates(neuron, x, 8)
    assert not torch.equal(trail[0], solution) and not torch.equal(trail[1], solution)
    for m, s in enumerate(trail):
        assert torch.equal(s[:, : m + 1], solution[:, : m + 1]), m
        if m % 2 == 0:
            assert (s >= solution).all(), m
        else:
            assert (s <= solution).all(), m
        if m >= 2:
            assert (s <= trail[m - 2]).all() if m % 2 == 0 else (s >= trail[m - 2]).all(), m


def test_training_cap_reports_unconverged_steps():
    x = gaussian_input((4, 200, 8), *REGIMES["dense"][:2], seed=5)
    capped = make_refractory(8, train_max_iters=1)
    assert capped.training
    spikes = capped(x)
    first, second = iterates(capped, x, 1)
    assert capped.iterations_used == 1
    assert capped.unconverged_fraction == pytest.approx((first != second).double().mean().item())
    assert capped.unconverged_fraction > 0.01
    assert torch.equal(spikes, second)
    assert not torch.equal(spikes, capped.forward_sequential(x))
    converged = make_refractory(8, train_max_iters=None, solver="iterate")
    converged(x)
    assert converged.unconverged_fraction == 0.0 and converged.iterations_used > 3 and converged.loop_steps == 0


def test_the_time_loop_finishes_the_solve_on_the_cpu_with_the_same_spikes_and_margins():
    """solver="auto" on the CPU: the whole compiled time loop (where numba imports; no iteration), and
    with ``backend="torch"`` the solver's time loop solves the whole train and one iteration confirms
    it (without numba: the first iteration fixes a prefix, a loop of tensor operations the rest, the
    next iteration confirms it); spikes equal those of iteration alone, margins and gradients agree
    (the compiled loop's to rounding: it sums the same terms in another order)."""
    x = gaussian_input((16, 201, 64), *REGIMES["dense"][:2], seed=9)
    results = []
    for solver, backend in [("auto", None), ("auto", "torch"), ("iterate", "torch")]:
        neuron = make_refractory(64, solver=solver)
        neuron.backend = backend
        xi = x.clone().requires_grad_(True)
        spikes = neuron(xi)
        (spikes * x).sum().backward()
        results.append((neuron, spikes, neuron.margin(x), xi.grad, neuron.raw_v_th.grad, neuron.raw_rho.grad))
    (compiled, *compiled_values), (auto, *auto_values), (iterate, *iterate_values) = results
    if loop_is_compiled(x):
        assert compiled.iterations_used == 0 and compiled.loop_steps == 201
        assert auto.iterations_used == 1 and auto.loop_steps == 201
    else:
        assert compiled.iterations_used == 2 and 0 < compiled.loop_steps < 201
        assert auto.iterations_used == 2 and 0 < auto.loop_steps < 201
    assert compiled.unconverged_fraction == auto.unconverged_fraction == 0.0
    assert iterate.iterations_used > 3 and iterate.loop_steps == 0
    for a, b in zip(auto_values, iterate_values):
        assert torch.equal(a, b)
    assert torch.equal(compiled_values[0], iterate_values[0])
    for a, b in zip(compiled_values[1:], iterate_values[1:]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_evaluation_ignores_the_training_cap():
    x = gaussian_input((4, 200, 8), *REGIMES["dense"][:2], seed=5)
    neuron = make_refractory(8, train_max_iters=1, solver="iterate").eval()
    assert torch.equal(neuron(x), neuron.forward_sequential(x))
    assert neuron.unconverged_fraction == 0.0 and neuron.iterations_used > 3


def test_default_iterates_to_convergence_in_training_too():
    neuron = build_neuron("refractory_lif", 8)
    assert isinstance(neuron, RefractoryLIF) and neuron.train_max_iters is None and neuron.training
    assert neuron.solver == "auto"
    x = gaussian_input((4, 200, 8), *REGIMES["dense"][:2], dtype=torch.float32, seed=6)
    assert torch.equal(neuron(x), neuron.forward_sequential(x))
    assert neuron.unconverged_fraction == 0.0


def test_iteration_count_reaches_its_bound_of_L():
    """A staircase input whose every spike is decided only after the spike before it: one step
    settles per iteration, so L iterations are needed, and the solver does not stop short; the
    time loop (solver="auto" on the CPU) solves it after the first iteration."""
    neuron = RefractoryLIF(1, tau=1.0, gamma=0.0, rho_init=1.0, solver="iterate").double()
    length = 9
    # beta = 0, gamma = 0: s_t = H(x_t - V_th - rho s_{t-1}); x_t in (V_th, V_th + rho) fires iff s_{t-1} = 0
    with torch.no_grad():
        x = torch.full((1, length, 1), float(neuron.v_th) + 0.5 * float(neuron.rho), dtype=torch.float64)
    expected = torch.tensor([1.0, 0.0] * 4 + [1.0], dtype=torch.float64).view(1, length, 1)
    assert torch.equal(neuron.eval()(x), expected)
    assert neuron.iterations_used == length
    with torch.no_grad():
        excess = leaky_integrate(x, neuron.beta) - neuron.v_th
        looped = boundary_compression(excess, neuron.v_th, neuron.rho, neuron.beta, neuron.gamma, None, loop_ratio=1.0)
    assert torch.equal(looped.spikes, expected) and looped.converged
    assert looped.iterations == 2 and looped.loop_steps == length - 1
    with torch.no_grad():
        first = boundary_compression(excess, neuron.v_th, neuron.rho, neuron.beta, neuron.gamma, None, loop_ratio=0.1)
    assert torch.equal(first.spikes, expected) and first.converged
    assert first.iterations == 1 and first.loop_steps == length


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("compiled", [True, False])
def test_time_loop_from_any_step_equals_the_definition(compiled, dtype, monkeypatch):
    """``refractory_loop`` (compiled, and the loop of tensor operations) from step 0 and from a step
    inside, started from the exact traces there and a wrong tail, gives the time loop's spikes."""
    if not compiled:
        monkeypatch.setattr(loop_module, "loop_is_compiled", lambda excess: False)
    elif not loop_module.loop_is_compiled(torch.zeros(1, 1, 1, dtype=dtype)):
        pytest.skip("numba is not installed")
    neuron = make_refractory(5).to(dtype)
    x = gaussian_input((3, 67, 5), *REGIMES["dense"][:2], seed=11).to(dtype)
    with torch.no_grad():
        excess = leaky_integrate(x, neuron.beta) - neuron.v_th
        exact = neuron.forward_sequential(x)
        _, reset, refractory = refractory_iteration(excess, exact, neuron.v_th, neuron.rho, neuron.beta, neuron.gamma)
        for start in (0, 1, 40, 66):
            wrong = exact.clone()
            wrong[:, start:] = 1 - wrong[:, start:]
            traces = (reset[:, start], refractory[:, start])
            solved = loop_module.refractory_loop(
                start, excess, wrong, traces, neuron.v_th, neuron.rho, neuron.beta, neuron.gamma
            )
            assert torch.equal(solved, exact), start


@pytest.mark.parametrize("solver", SOLVERS)
def test_parallel_gradients_equal_the_time_loop_and_reach_threshold_and_rho(solver):
    neuron = make_refractory(3, solver=solver)
    x = gaussian_input((2, 65, 3), 1.0, 0.8, seed=7).requires_grad_()
    weight = gaussian_input((2, 65, 3), 1.0, 0.0, seed=8)
    inputs = [x, neuron.raw_v_th, neuron.raw_rho]
    parallel = torch.autograd.grad((neuron(x) * weight).sum(), inputs)
    sequential = torch.autograd.grad((neuron.forward_sequential(x) * weight).sum(), inputs)
    for name, p, s in zip(["x", "raw_v_th", "raw_rho"], parallel, sequential):
        assert (p.abs() > 1e-4).all(), name
        torch.testing.assert_close(p, s, rtol=1e-9, atol=1e-12, msg=name)


def test_parameters_start_at_their_init_values_in_the_dynamics_group():
    neuron = RefractoryLIF(5, v_th_init=1.0, rho_init=0.5)
    assert dict(neuron.named_parameters()).keys() == {"raw_v_th", "raw_rho"}
    assert all(group_of(p) == "dynamics" for p in neuron.parameters())
    torch.testing.assert_close(neuron.v_th, torch.ones(5))
    torch.testing.assert_close(neuron.rho, torch.full((5,), 0.5))
    with torch.no_grad():
        neuron.raw_v_th.fill_(-30.0)
    assert (neuron.v_th > 0).all()
    torch.testing.assert_close(neuron.v_th, F.softplus(torch.full((5,), -30.0)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(train_max_iters=0), "train_max_iters"),
        (dict(tau=0.5), "tau"),
        (dict(gamma=1.0), "gamma"),
        (dict(v_th_init=0.0), "v_th_init"),
        (dict(surrogate="sigmoid"), "surrogate"),
        (dict(solver="newton"), "solver"),
    ],
)
def test_rejects_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RefractoryLIF(4, **kwargs)


def test_rejects_bad_input_shapes():
    neuron = RefractoryLIF(4)
    with pytest.raises(ValueError, match="batch, length, channels"):
        neuron(torch.zeros(4, 10))
    with pytest.raises(ValueError, match="d_model=4"):
        neuron.forward_sequential(torch.zeros(2, 10, 5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_cpu_default_is_the_compiled_loop_and_every_path_gives_the_definitions_spikes(dtype):
    """On the CPU the automatic choice is the whole compiled time loop (no iteration); a capped training
    solve, ``solver="iterate"`` and ``backend="torch"`` iterate; the iteration itself runs compiled under
    ``backend="compiled"``. All give the sequential form's spikes."""
    x = gaussian_input((3, 120, 8), *REGIMES["dense"][:2], dtype=dtype, seed=12)
    expected = make_refractory(8).to(dtype).forward_sequential(x)
    cases = [
        (dict(), 0),
        (dict(backend="compiled"), 0),
        (dict(backend="torch"), 1),
        (dict(solver="iterate"), 2),
        (dict(solver="iterate", backend="compiled"), 2),
    ]
    for options, least_iterations in cases:
        neuron = make_refractory(8, solver=options.get("solver", "auto")).to(dtype).eval()
        neuron.backend = options.get("backend")
        assert torch.equal(neuron(x), expected), options
        assert (neuron.iterations_used == 0) == (least_iterations == 0), options
        assert neuron.iterations_used >= least_iterations, options
