"""The iterative neuron solvers' statistics (lra_snn.training.solver_statistics), computed over the modules that
report them and logged under each split's names for any task."""

from __future__ import annotations

from torch import nn

from lra_snn.training.solver_statistics import SolverStatistics, solver_statistics


class Solved(nn.Module):
    def __init__(self, iterations: int, fraction: float, loop_steps: int | None) -> None:
        super().__init__()
        self.iterations_used, self.unconverged_fraction, self.loop_steps = iterations, fraction, loop_steps


class HalfReported(nn.Module):
    iterations_used = 7  # no unconverged_fraction: not a solver's report, left out


class WithoutLoop(nn.Module):
    iterations_used, unconverged_fraction = 3, 0.0  # a solver that has no time loop at all


class Recorder(nn.Module):
    """A module with the two solvers above and Lightning's ``log``, recording the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = Solved(2, 0.5, None), Solved(4, 0.0, 10), HalfReported()
        self.logged: list[tuple] = []

    def log(self, name, value, **options) -> None:
        self.logged.append((name, value, options))


def test_the_statistics_are_means_and_a_maximum_over_the_solvers():
    assert solver_statistics(Recorder()) == {
        "unconverged_fraction": 0.25,
        "solver_iterations": 3.0,
        "solver_iterations_max": 4.0,
        "solver_loop_steps": 5.0,  # a solver that reports no loop steps counts 0
    }
    assert solver_statistics(nn.Sequential(nn.Linear(2, 2), HalfReported())) is None
    assert solver_statistics(nn.Sequential(WithoutLoop()))["solver_loop_steps"] == 0.0


def test_train_batches_log_per_step_and_epoch_test_batches_per_epoch():
    module, callback = Recorder(), SolverStatistics()
    callback.on_train_batch_end(None, module, None, None, 0)
    callback.on_test_batch_end(None, module, None, None, 0)
    mean, maximum = {"on_epoch": True, "reduce_fx": "mean"}, {"on_epoch": True, "reduce_fx": "max"}
    assert module.logged == [
        ("train/unconverged_fraction", 0.25, {"on_step": True, **mean}),
        ("train/solver_iterations", 3.0, {"on_step": True, **mean}),
        ("train/solver_iterations_max", 4.0, {"on_step": True, **maximum}),
        ("train/solver_loop_steps", 5.0, {"on_step": True, **mean}),
        ("test/unconverged_fraction", 0.25, {"on_step": False, **mean}),
        ("test/solver_iterations", 3.0, {"on_step": False, **mean}),
        ("test/solver_iterations_max", 4.0, {"on_step": False, **maximum}),
        ("test/solver_loop_steps", 5.0, {"on_step": False, **mean}),
    ]
