"""The iterative neuron solvers' statistics, logged for every task (docs/neurons.md, section 3).

A neuron whose forward solves its spike train iteratively (the refractory LIF's boundary compression)
leaves after each forward ``iterations_used``, ``unconverged_fraction`` and ``loop_steps``. After each
training and test batch this callback logs, over those neurons: ``<split>/unconverged_fraction`` (mean
fraction of steps the last iteration left unconverged; 0 outside training, where the solver always
converges), ``<split>/solver_iterations`` (mean iterations per neuron), ``<split>/solver_iterations_max``
(the most any neuron needed) and ``<split>/solver_loop_steps`` (mean steps per neuron that the time
loop solved between iterations). Epoch values are the mean (the maximum for ``_max``) over batches; at
test they land in the run's ``result.json``. Models without such a neuron log nothing.
"""

from __future__ import annotations

from typing import Any

import lightning as L


def solver_statistics(module: L.LightningModule) -> dict[str, float] | None:
    """The four statistics of ``module``'s last forward (names without the split), None without a solver."""
    solved = [
        (float(count), float(fraction), float(getattr(m, "loop_steps", None) or 0))
        for m in module.modules()
        if (count := getattr(m, "iterations_used", None)) is not None
        and (fraction := getattr(m, "unconverged_fraction", None)) is not None
    ]
    if not solved:
        return None
    iterations, fractions, loop_steps = (list(column) for column in zip(*solved))
    return {
        "unconverged_fraction": sum(fractions) / len(fractions),
        "solver_iterations": sum(iterations) / len(iterations),
        "solver_iterations_max": max(iterations),
        "solver_loop_steps": sum(loop_steps) / len(loop_steps),
    }


class SolverStatistics(L.Callback):
    """Log ``solver_statistics`` after every training batch (per step and per epoch) and test batch (per epoch)."""

    def _log(self, module: L.LightningModule, split: str) -> None:
        statistics = solver_statistics(module)
        if statistics is None:
            return
        per_step = split == "train"
        for name, value in statistics.items():
            reduce = "max" if name == "solver_iterations_max" else "mean"
            module.log(f"{split}/{name}", value, on_step=per_step, on_epoch=True, reduce_fx=reduce)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self._log(pl_module, "train")

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        self._log(pl_module, "test")
