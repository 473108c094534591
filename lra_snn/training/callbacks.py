"""Lightning callbacks for neuron training schedules: the masked-PSN lambda ramp (docs/neurons.md, section 4).

A callback finds the neurons it drives by what they declare, not by their class: a neuron lists
the attributes a schedule may set in ``Neuron.schedules``.

Fang et al. (arXiv 2304.12760) train the masked PSN with a mask that is blended in
progressively: ``lambda = min(8 * epoch / (epochs - 1), 1)``, from 0 (plain PSN) at the first
epoch to 1 (fully masked, hence streamable) from about the first eighth of training on.
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn

from lra_snn.neurons import Neuron

_LAMBDA = "lambda_"  # the attribute the masked-PSN schedule sets, where a neuron lists it in ``schedules``


def masked_psn_lambda(epoch: int, max_epochs: int | None, ramp: float = 8.0) -> float:
    """``min(ramp * epoch / (max_epochs - 1), 1)``; a single-epoch run is fully masked (lambda = 1).

    With one epoch that epoch is also the last, and the schedule always ends at 1.
    """
    if max_epochs is None or max_epochs < 1:
        raise ValueError(
            f"the masked-PSN lambda schedule needs a finite number of epochs, got max_epochs={max_epochs!r}; "
            "set trainer.max_epochs (training bounded by max_steps alone has no epoch count to ramp over)"
        )
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if max_epochs == 1:
        return 1.0
    return min(ramp * epoch / (max_epochs - 1), 1.0)


class MaskedPSNLambdaSchedule(pl.Callback):
    """At each training epoch's start, set ``lambda_`` of every neuron in the model that schedules it
    (``"lambda_" in neuron.schedules``: the masked PSN).

    ``ramp`` is the slope of the schedule in units of the whole run (8 in the paper).
    A model without such a neuron gets a warning, since the callback then does nothing.
    """

    def __init__(self, ramp: float = 8.0) -> None:
        super().__init__()
        if not ramp > 0:
            raise ValueError(f"MaskedPSNLambdaSchedule: ramp must be positive, got {ramp!r}")
        self.ramp = ramp

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = masked_psn_lambda(trainer.current_epoch, trainer.max_epochs, self.ramp)
        neurons = [m for m in pl_module.modules() if isinstance(m, Neuron) and _LAMBDA in m.schedules]
        if not neurons:
            rank_zero_warn(
                "MaskedPSNLambdaSchedule: the model has no neuron that schedules lambda_ (a masked PSN); "
                "the callback does nothing"
            )
        for neuron in neurons:
            setattr(neuron, _LAMBDA, value)
