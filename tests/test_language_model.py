"""The language-model task (WikiText-103 path): the adaptive input and softmax (a distribution over the
whole vocabulary, a dense softmax with one band, tied weights that learn through both ends), the loss
against the perplexity metric, causality, refusal of non-causal encoders, learning on tiny data, and a
run through ``lra_snn.train``."""

from __future__ import annotations

import csv
import math
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch

from lra_snn.data.wikitext103.module import WikiTextDataModule
from lra_snn.models.adaptive import AdaptiveInput, AdaptiveSoftmax, band_width, clip_cutoffs
from lra_snn.models.backbone import SequenceEncoder
from lra_snn.models.blocks import S4DBlock
from lra_snn.tasks.language_model import LanguageModelTask
from lra_snn.training.cell import run
from tests.fakes import LINES, write_corpus

LM_OVERRIDES = ("data=wikitext103", "model=s4d")  # the data config picks the LM task and a causal encoder


def make_task(
    vocab_size: int,
    cutoffs=(19_997, 39_997, 199_997),
    bidirectional: bool = False,
    norm: str = "layer",
    adaptive_input: bool = True,
    **task_settings,
) -> LanguageModelTask:
    torch.manual_seed(0)
    layer = partial(S4DBlock, d_state=4, bidirectional=bidirectional)
    embedding = partial(AdaptiveInput, cutoffs=cutoffs, div_value=4.0) if adaptive_input else None
    encoder = SequenceEncoder(16, 2, layer, vocab_size=vocab_size, norm=norm, prenorm=True, embedding=embedding)
    return LanguageModelTask(encoder, vocab_size, cutoffs=cutoffs, **task_settings)


def random_head(vocab_size: int, cutoffs, tied: AdaptiveInput | None = None, d_model: int = 16) -> AdaptiveSoftmax:
    """An adaptive softmax in float64 with every parameter random (no zero-initialised head projection)."""
    torch.manual_seed(1)
    head = AdaptiveSoftmax(vocab_size, d_model, cutoffs, div_value=2.0, tied=tied).double()
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0.0, 0.5)
    return head


def test_cutoffs_beyond_the_vocabulary_are_clipped_and_bad_ones_refused() -> None:
    assert clip_cutoffs((19_997, 39_997, 199_997), 267_735) == [19_997, 39_997, 199_997]
    assert clip_cutoffs((19_997, 39_997, 199_997), 33_278) == [19_997]
    assert clip_cutoffs((19_997, 39_997, 199_997), 500) == []
    with pytest.raises(ValueError, match=r"task\.cutoffs must be increasing positive integers"):
        clip_cutoffs((40_000, 20_000), 267_735)
    assert [band_width(1024, 4.0, i) for i in range(4)] == [1024, 256, 64, 16]
    assert band_width(16, 4.0, 3) == 1  # at least one dimension
    task = make_task(300)  # every S4 cutoff >= vocabulary: one band, a full softmax, still tied
    assert task.head.bounds == [(0, 300)] and task.head.table(0) is task.encoder.encoder.tables[0].weight
    assert make_task(300, cutoffs=(50, 150)).head.bounds == [(0, 50), (50, 150), (150, 300)]


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_adaptive_softmax_is_a_distribution_over_the_whole_vocabulary(tied) -> None:
    vocab, cutoffs = 37, (5, 12, 30)
    adaptive_input = AdaptiveInput(vocab, 16, cutoffs, div_value=2.0).double() if tied else None
    head = random_head(vocab, cutoffs, adaptive_input)
    hidden = torch.randn(6, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    log_probs = head.log_prob(hidden)
    assert log_probs.shape == (6, vocab)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-12)
    targets = torch.tensor([0, 4, 5, 11, 12, 36])  # first and last id of several bands
    nll = head.nll(hidden, targets)
    torch.testing.assert_close(nll, -log_probs[torch.arange(6), targets], rtol=0, atol=1e-12)


def test_adaptive_softmax_with_one_band_is_the_dense_softmax() -> None:
    head = random_head(40, (40, 100))  # cutoffs >= vocabulary: one band
    hidden = torch.randn(5, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    projection, table, bias = head.projection(0), head.table(0), head.biases[0]
    dense = torch.log_softmax(hidden @ projection @ table.T + bias, dim=-1)
    torch.testing.assert_close(head.log_prob(hidden), dense, rtol=0, atol=1e-12)
    assert head.cluster_weight.numel() == 0


def test_tied_weights_learn_through_the_input_and_the_softmax() -> None:
    vocab, cutoffs = 37, (5, 12, 30)
    torch.manual_seed(0)
    adaptive_input = AdaptiveInput(vocab, 16, cutoffs, div_value=2.0).double()
    head = random_head(vocab, cutoffs, adaptive_input)
    tokens, targets = torch.tensor([[1, 7, 20, 33]]), torch.tensor([3, 9, 25, 31])
    tables = [t.weight for t in adaptive_input.tables]
    assert all(head.table(band) is table for band, table in enumerate(tables))
    assert all(head.projection(band) is adaptive_input.projections[band] for band in (1, 2, 3))
    assert head.projection(0) is not adaptive_input.projections[0]  # the head keeps its own
    own = {id(p) for p in head.parameters()}
    assert not own & {id(p) for p in adaptive_input.parameters()}  # shared tensors belong to the input alone

    def grads(hidden_from_input: bool) -> list[torch.Tensor]:
        for p in [*adaptive_input.parameters(), *head.parameters()]:
            p.grad = None
        embedded = adaptive_input(tokens)[0]
        hidden = embedded if hidden_from_input else embedded.detach()
        head.nll(hidden, targets).sum().backward()
        return [t.grad.clone() if t.grad is not None else torch.zeros_like(t) for t in tables]

    through_softmax = grads(hidden_from_input=False)
    through_both = grads(hidden_from_input=True)
    for band, (softmax_only, both) in enumerate(zip(through_softmax, through_both, strict=True)):
        assert softmax_only.abs().sum() > 0, f"band {band}: no gradient from the softmax"
        assert (both - softmax_only).abs().sum() > 0, f"band {band}: no gradient from the input"


def random_batch(vocab_size: int, rows: int = 3, length: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab_size, (rows, length + 1), generator=generator)
    lengths = torch.tensor([length, length - 5, 1])[:rows]
    targets = tokens[:, 1:].clone()
    targets[torch.arange(length)[None, :] >= lengths[:, None]] = -100
    return {"inputs": tokens[:, :-1], "targets": targets, "lengths": lengths}


@pytest.mark.parametrize("adaptive_input", [True, False], ids=["adaptive-input", "plain-embedding"])
@pytest.mark.parametrize("cutoffs", [(50, 150), (20_000,)], ids=["adaptive", "full-softmax"])
def test_loss_is_the_mean_nll_the_metrics_accumulate(cutoffs, adaptive_input) -> None:
    task = make_task(300, cutoffs=cutoffs, adaptive_input=adaptive_input)
    batch = random_batch(300)
    nll = task.token_nll(batch)
    assert nll.shape == (int(batch["lengths"].sum()),)
    # the scored tokens' log-probabilities from the full distribution agree with the loss path
    log_probs = task.log_probs(batch["inputs"], batch["lengths"])
    scored = batch["targets"] != -100
    gathered = log_probs[scored].gather(1, batch["targets"][scored][:, None]).squeeze(1)
    torch.testing.assert_close(-gathered, nll, rtol=1e-5, atol=1e-5)
    second = random_batch(300, seed=1)
    loss_metric, ppl_metric = task.metrics["val_loss"], task.metrics["val_ppl"]
    nlls = [task.token_nll(b) for b in (batch, second)]
    for values in nlls:
        loss_metric.update(values)
        ppl_metric.update(values)
    mean = torch.cat(nlls).double().mean()  # token-weighted over both batches, not a mean of batch means
    torch.testing.assert_close(loss_metric.compute(), mean)
    torch.testing.assert_close(ppl_metric.compute(), mean.exp())


@pytest.mark.parametrize("train_mode", [False, True], ids=["eval", "train"])
def test_a_future_token_never_changes_earlier_log_probs(train_mode) -> None:
    task = make_task(300, cutoffs=(50, 150)).train(train_mode)
    inputs = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(3))
    lengths = torch.tensor([16, 16])
    changed = inputs.clone()
    changed[:, 10] = (inputs[:, 10] + 7) % 300
    before, after = task.log_probs(inputs, lengths), task.log_probs(changed, lengths)
    torch.testing.assert_close(after[:, :10], before[:, :10], rtol=0, atol=1e-5)
    assert (after[:, 10:] - before[:, 10:]).abs().amax() > 1e-3


def test_non_causal_or_mismatched_encoders_are_refused() -> None:
    with pytest.raises(ValueError, match=r"bidirectional; set model\.encoder\.layer\.bidirectional=false"):
        make_task(300, bidirectional=True)
    with pytest.raises(ValueError, match=r"BatchNorm.*set model\.encoder\.norm=layer"):
        make_task(300, norm="batch")
    encoder = SequenceEncoder(16, 1, partial(S4DBlock, d_state=4), vocab_size=200, norm="layer")
    with pytest.raises(ValueError, match="embeds 200 tokens but the vocabulary has 300"):
        LanguageModelTask(encoder, 300)
    values = SequenceEncoder(16, 1, partial(S4DBlock, d_state=4), d_input=3, norm="layer")
    with pytest.raises(ValueError, match="needs a token encoder"):
        LanguageModelTask(values, 300)


def test_a_few_training_steps_reduce_the_loss(tmp_path: Path) -> None:
    L.seed_everything(0)
    data = WikiTextDataModule(
        data_dir=tmp_path / "data", source_dir=write_corpus(tmp_path / "src"), max_length=16, global_batch=4
    )
    data.prepare_data()
    data.setup()
    task = make_task(data.vocab_size, lr=0.01, weight_decay=0.0, warmup_steps=0, total_steps=100)
    batches = list(data.train_dataloader())

    def mean_train_nll() -> float:
        with torch.no_grad():
            return float(torch.cat([task.token_nll(b) for b in batches]).mean())

    before = mean_train_nll()
    trainer = L.Trainer(
        max_steps=12,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(task, datamodule=data)
    after = mean_train_nll()
    assert before > math.log(data.vocab_size) - 1  # starts near uniform
    assert after < before - 0.5, (before, after)


def test_train_run_end_to_end_records_perplexity(compose_train, tmp_path: Path) -> None:
    source = write_corpus(tmp_path / "src")
    cfg = compose_train(*LM_OVERRIDES, "profile=tiny", f"data.source_dir={source}")
    assert cfg.monitor.metric == "val/ppl" and cfg.data.max_length == 32
    record = run(cfg)
    assert record["status"] == "completed", record.get("message")
    metrics = record["metrics"]
    for split in ("val", "test"):
        assert math.isfinite(metrics[f"{split}/ppl"]) and metrics[f"{split}/ppl"] > 1
        assert math.isclose(metrics[f"{split}/ppl"], math.exp(metrics[f"{split}/loss"]), rel_tol=1e-6)
    test_tokens = sum(len(line.split()) + 1 for line in LINES)
    assert metrics["test/tokens"] == test_tokens and metrics["test/unseen_tokens"] == 0
    assert record["steps"] > 0


def test_the_language_model_logs_the_refractory_solver_like_every_task(compose_train, tmp_path: Path) -> None:
    source = write_corpus(tmp_path / "src")
    cfg = compose_train(
        "data=wikitext103",
        "model=spike_ssm",
        "profile=tiny",
        f"data.source_dir={source}",
        "model.encoder.layer.neuron.solver=iterate",  # iteration alone: the test pass counts its iterations
    )
    record = run(cfg)
    assert record["status"] == "completed", record.get("message")
    metrics = record["metrics"]
    assert metrics["test/unconverged_fraction"] == 0.0 and metrics["test/solver_loop_steps"] == 0.0
    assert 1 <= metrics["test/solver_iterations"] <= metrics["test/solver_iterations_max"] <= cfg.data.max_length
    with open(Path(cfg.paths.run_dir) / "logs" / "metrics.csv") as log:
        logged = [row["train/solver_iterations_step"] for row in csv.DictReader(log)]
    assert [float(value) for value in logged if value] and all(float(v) >= 1 for v in logged if v)


def test_spikingssm_models_language_with_its_surrogate_measured(compose_train, tmp_path: Path) -> None:
    source = write_corpus(tmp_path / "src")
    record = run(compose_train("data=wikitext103", "model=spikingssm", "profile=tiny", f"data.source_dir={source}"))
    assert record["status"] == "completed", record.get("message")
    metrics = record["metrics"]
    assert 0.9 < metrics["test/surrogate_agreement"] <= 1.0
    assert metrics["test/exact_neuron/ppl"] == pytest.approx(math.exp(metrics["test/exact_neuron/loss"]), rel=1e-4)


def test_missing_wikitext103_records_no_data(compose_train) -> None:
    record = run(compose_train(*LM_OVERRIDES, "profile=tiny"))
    assert record["status"] == "no_data"
    assert "make data-wikitext103" in record["message"] and "wiki.train.tokens" in record["message"]


def test_profiles_shrink_the_data_and_keep_the_lm_recipe(compose_train) -> None:
    full = compose_train(*LM_OVERRIDES, "profile=full")
    assert (full.data.max_length, full.data.max_train_tokens, full.data.max_eval_tokens) == (8192, None, None)
    assert (full.task.lr, full.task.weight_decay, full.task.warmup_steps) == (5e-4, 0.1, 1000)
    assert list(full.task.cutoffs) == [19_997, 39_997, 199_997] and full.task.div_value == 4.0
    mini = compose_train(*LM_OVERRIDES, "profile=mini")
    assert (mini.data.max_length, mini.data.global_batch, mini.data.max_train_tokens) == (128, 8, 8192)
    assert mini.task.warmup_steps == 16 and mini.task_name == "wikitext103"
