"""Classification metrics over a whole split (lra_snn/tasks/classification.py): accuracy counts examples,
not classes, and the loss is the mean over examples, whatever the batch sizes. A model whose logits are
set by hand gives the expected values exactly."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lra_snn.models.backbone import SequenceEncoder
from lra_snn.tasks.classification import ClassificationTask

N_CLASSES = 3
CONFIDENCE = 2.0  # the logit of the token's class; the other logits are 0


def token_classifier() -> ClassificationTask:
    """Token t of a one-step sequence gets logits CONFIDENCE * onehot(t): it predicts class t."""
    encoder = SequenceEncoder(d_model=N_CLASSES, n_layers=0, vocab_size=N_CLASSES, layer=nn.Identity, norm="none")
    task = ClassificationTask(encoder, n_classes=N_CLASSES)
    with torch.no_grad():
        encoder.encoder.weight.copy_(CONFIDENCE * torch.eye(N_CLASSES))
        task.head.weight.copy_(torch.eye(N_CLASSES))
        task.head.bias.zero_()
    return task


def batch(predicted: list[int], labels: list[int]) -> dict[str, torch.Tensor]:
    return {"inputs": torch.tensor(predicted)[:, None], "lengths": torch.ones(len(labels), dtype=torch.long),
            "labels": torch.tensor(labels)}


# cross-entropy of one example: right -log(e^c / (e^c + 2)), wrong -log(1 / (e^c + 2))
RIGHT = -math.log(math.exp(CONFIDENCE) / (math.exp(CONFIDENCE) + N_CLASSES - 1))
WRONG = -math.log(1 / (math.exp(CONFIDENCE) + N_CLASSES - 1))
# batch 1: three examples of class 0, all right; batch 2: one example of class 1, predicted 0
BATCHES = [batch([0, 0, 0], [0, 0, 0]), batch([0], [1])]


def evaluate(split: str) -> dict[str, float]:
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    run = trainer.validate if split == "val" else trainer.test
    (metrics,) = run(token_classifier(), dataloaders=DataLoader(BATCHES, batch_size=None), verbose=False)
    return metrics


@pytest.mark.parametrize("split", ["val", "test"])
def test_accuracy_is_the_fraction_of_examples_right_not_the_mean_over_classes(split):
    # per example: 3 of 4 right; per class it would be (1 + 0) / 2 (or / 3)
    assert evaluate(split)[f"{split}/acc"] == pytest.approx(3 / 4)


@pytest.mark.parametrize("split", ["val", "test"])
def test_loss_is_the_mean_over_examples_whatever_the_batch_sizes(split):
    # per example: (3 RIGHT + WRONG) / 4; the mean of the two batch means would be (RIGHT + WRONG) / 2
    assert evaluate(split)[f"{split}/loss"] == pytest.approx((3 * RIGHT + WRONG) / 4, rel=1e-6)
