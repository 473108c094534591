"""How closely a surrogate neuron follows the exact neuron it stands for, on the inputs it really sees.

A neuron that approximates another (SpikingSSMs' surrogate dynamic network, ``lra_snn.neurons.sdn``,
approximates the tau = 0.125 hard-reset LIF) says so with ``exact_spikes(x)``: the exact neuron's spikes
on the same input. During every test pass this callback compares, layer by layer, the spikes the
model used with ``exact_spikes`` of the layer's input, over the steps of each sequence (not its
padding), and logs ``test/surrogate_agreement`` (the fraction of equal spikes over all such neurons)
and ``test/surrogate_agreement/<layer>``. Models without such a neuron log nothing.

``exact_neurons(module)`` switches those neurons to their exact spikes for a ``with`` block, which the
cell's run uses for a second test pass: how much of the accuracy depends on the approximation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


def surrogates(module: nn.Module) -> dict[str, nn.Module]:
    """The submodules of ``module`` that approximate an exact neuron (they have ``exact_spikes``), by name."""
    return {name: m for name, m in module.named_modules() if callable(getattr(m, "exact_spikes", None))}


@contextmanager
def exact_neurons(module: nn.Module) -> Iterator[int]:
    """Within the block, every surrogate neuron of ``module`` fires the exact neuron's spikes; yields how many."""
    found = list(surrogates(module).values())
    for neuron in found:
        setattr(neuron, "use_exact", True)  # noqa: B010 (an attribute the surrogate neurons declare)
    try:
        yield len(found)
    finally:
        for neuron in found:
            setattr(neuron, "use_exact", False)  # noqa: B010


EXACT_METRICS = ("acc", "loss", "ppl")  # what the second test pass records, as test/exact_neuron/<name>


def exact_neuron_metrics(
    trainer: L.Trainer, task: L.LightningModule, datamodule: Any, checkpoint: str | None
) -> dict[str, float]:
    """The test metrics of ``checkpoint`` with every surrogate neuron swapped for its exact neuron, as
    ``test/exact_neuron/<name>``; empty for a model without surrogate neurons (no second pass)."""
    with exact_neurons(task) as found:
        if not found:
            return {}
        (metrics,) = trainer.test(task, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)
    return {
        f"test/exact_neuron/{name}": float(metrics[f"test/{name}"])
        for name in EXACT_METRICS
        if f"test/{name}" in metrics
    }


class SurrogateAgreement(L.Callback):
    """Count equal spikes of each surrogate neuron and its exact neuron over the valid steps of the test pass."""

    def __init__(self) -> None:
        super().__init__()
        self._hooks: list[RemovableHandle] = []
        self._valid: Tensor | None = None  # (B, L, 1) mask of the current batch's steps
        self._counts: dict[str, list[float]] = {}

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._counts = {}
        for name, neuron in surrogates(pl_module).items():
            self._counts[name] = [0.0, 0.0]
            self._hooks.append(neuron.register_forward_hook(self._compare(name)))

    def on_test_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, *args: Any) -> None:
        # a pair of documents (B, 2) is encoded as 2B sequences, in this order
        self._valid = batch["lengths"].flatten()

    def _compare(self, name: str):
        def hook(neuron: nn.Module, inputs: tuple[Tensor, ...], spikes: Tensor) -> None:
            x = inputs[0]
            with torch.no_grad():
                equal = (spikes == getattr(neuron, "exact_spikes")(x)).to(torch.float64)  # noqa: B009
            steps = torch.arange(x.shape[1], device=x.device)
            if self._valid is not None and self._valid.numel() == x.shape[0]:
                mask = (steps[None, :] < self._valid.to(x.device)[:, None]).to(torch.float64)[..., None]
            else:  # inputs the batch lengths do not describe: every step counts
                mask = torch.ones_like(equal[..., :1])
            self._counts[name][0] += float((equal * mask).sum())
            self._counts[name][1] += float(mask.sum()) * x.shape[-1]

        return hook

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []
        totals = [0.0, 0.0]
        for name, (equal, counted) in self._counts.items():
            if counted:
                pl_module.log(f"test/surrogate_agreement/{name}", equal / counted)
                totals = [totals[0] + equal, totals[1] + counted]
        if totals[1]:
            pl_module.log("test/surrogate_agreement", totals[0] / totals[1])
