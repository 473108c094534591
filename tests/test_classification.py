"""Classification (lra_snn/tasks/classification.py) from a model whose logits are set by hand: accuracy
counts examples, not classes, and the loss is the mean over examples whatever the batch sizes; training
logs the batch loss; pooling and the Retrieval pair head by their definitions."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from lra_snn.models.backbone import SequenceEncoder
from lra_snn.tasks.classification import ClassificationTask, PairHead, pool

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


def quiet_trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def batch(predicted: list[int], labels: list[int]) -> dict[str, torch.Tensor]:
    return {
        "inputs": torch.tensor(predicted)[:, None],
        "lengths": torch.ones(len(labels), dtype=torch.long),
        "labels": torch.tensor(labels),
    }


# cross-entropy of one example: right -log(e^c / (e^c + 2)), wrong -log(1 / (e^c + 2))
RIGHT = -math.log(math.exp(CONFIDENCE) / (math.exp(CONFIDENCE) + N_CLASSES - 1))
WRONG = -math.log(1 / (math.exp(CONFIDENCE) + N_CLASSES - 1))
# batch 1: three examples of class 0, all right; batch 2: one example of class 1, predicted 0
BATCHES = [batch([0, 0, 0], [0, 0, 0]), batch([0], [1])]


def evaluate(split: str) -> dict[str, float]:
    trainer = quiet_trainer()
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


def test_training_logs_the_loss_of_the_batch_before_the_step():
    trainer = quiet_trainer(max_steps=1, limit_val_batches=0)
    trainer.fit(token_classifier(), train_dataloaders=DataLoader([BATCHES[1]], batch_size=None))
    logged = trainer.callback_metrics
    assert logged["train/loss_step"].item() == pytest.approx(WRONG) == logged["train/loss_epoch"].item()
    assert logged["train/acc"].item() == 0.0
    assert "train/loss_step" in trainer.progress_bar_metrics


def test_mean_and_last_pooling_over_the_true_length():
    x = torch.arange(1.0, 13.0).reshape(3, 2, 2)
    x[1, 1] = 0.0  # padding, zeroed by the encoder
    lengths = torch.tensor([2, 1, 0])
    assert torch.equal(pool(x, lengths, "mean"), torch.stack([(x[0, 0] + x[0, 1]) / 2, x[1, 0], x[2, 0] + x[2, 1]]))
    assert torch.equal(pool(x, lengths, "last"), torch.stack([x[0, 1], x[1, 0], x[2, 0]]))  # length 0: step 0


def test_pair_head_reads_both_documents_their_product_and_difference():
    torch.manual_seed(0)
    head = PairHead(2, N_CLASSES)
    a, b = torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0, 0.5]])
    features = torch.tensor([[1.0, -2.0, 3.0, 0.5, 3.0, -1.0, -2.0, -2.5]])  # a, b, a * b, a - b
    first, second = head.mlp[0], head.mlp[2]
    torch.testing.assert_close(head(a, b), second(F.gelu(first(features))))


def test_pair_task_encodes_each_document_and_pairs_them_per_example():
    encoder = SequenceEncoder(d_model=N_CLASSES, n_layers=0, vocab_size=N_CLASSES, layer=nn.Identity, norm="none")
    task = ClassificationTask(encoder, n_classes=N_CLASSES, pair=True)
    inputs = torch.tensor([[[0], [1]], [[2], [2]], [[1], [0]]])  # 3 pairs of one-token documents
    embedded = encoder.encoder.weight[inputs[..., 0]]  # (3, 2, D)
    expected = task.head(embedded[:, 0], embedded[:, 1])
    torch.testing.assert_close(task(inputs, torch.ones(3, 2, dtype=torch.long)), expected)
