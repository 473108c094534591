"""Streaming inference (lra_snn.models.streaming): step forms agree with the parallel forms, in constant memory."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from lra_snn.config import CONF_DIR, compose_train
from lra_snn.models.s4d import S4D
from lra_snn.models.streaming import StreamingEncoder, StreamingError, state_numel
from lra_snn.tasks.classification import ClassificationTask

VOCAB, CLASSES = 20, 10
ZOO = sorted(path.stem for path in (CONF_DIR / "model").glob("*.yaml"))
CAUSAL = ["model.encoder.layer.bidirectional=false"]


def _task(model: str, overrides: list[str], pool: str = "mean", seed: int = 0) -> ClassificationTask:
    """A tiny-profile zoo model with two layers, float64, eval mode."""
    cfg = compose_train([f"model={model}", "profile=tiny", "model.encoder.n_layers=2", *overrides])
    torch.manual_seed(seed)
    encoder = instantiate(cfg.model.encoder, vocab_size=VOCAB)
    return ClassificationTask(encoder, CLASSES, pool=pool).double().eval()


def _batch(length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, VOCAB, (4, length), generator=generator)
    lengths = torch.tensor([length, length - 3, 1, length // 2])
    return inputs, lengths


def _streams(model: str) -> bool:
    try:
        StreamingEncoder(_task(model, CAUSAL).encoder)
    except StreamingError:
        return False
    return True


STREAMABLE = [model for model in ZOO if _streams(model)]


def test_the_zoo_has_streaming_and_refused_models():
    assert {"s4d", "lif_ssm", "dsn_ssm", "prf", "sliding_psn_ssm", "spike_ssm"} <= set(STREAMABLE)
    assert {"psn_ssm", "masked_psn_ssm"}.isdisjoint(STREAMABLE)


# the normalisations the shipped recipes place: post-norm BatchNorm (the zoo defaults), pre-norm BatchNorm
# (the Pathfinder, Path-X, Retrieval and Text recipes), LayerNorm before and after (the language models, the
# SpikingSSMs Image recipe)
PLACEMENTS = {
    "post-batch": [],
    "pre-batch": ["model.encoder.prenorm=true"],
    "pre-layer": ["model.encoder.prenorm=true", "model.encoder.norm=layer"],
    "post-layer": ["model.encoder.norm=layer"],
}


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("pool", ["mean", "last"])
@pytest.mark.parametrize("model", STREAMABLE)
def test_streaming_logits_equal_parallel_logits(model, pool, placement):
    task = _task(model, [*CAUSAL, *PLACEMENTS[placement]], pool)
    trained_length = int(compose_train(["profile=tiny"]).data.max_length)
    odd_length = 2 * int(torch.randint(8, 30, (), generator=torch.Generator().manual_seed(7))) + 1
    for length in (trained_length, odd_length):
        inputs, lengths = _batch(length, seed=length)
        with torch.no_grad():
            parallel = task(inputs, lengths)
            task.stream()
            streamed = task(inputs, lengths)
            task.encoder = task.encoder.inner  # back to the parallel form for the next length
        assert isinstance(streamed, torch.Tensor) and streamed.dtype == torch.float64
        torch.testing.assert_close(streamed, parallel, rtol=1e-5, atol=1e-9)
        assert torch.equal(streamed.argmax(-1), parallel.argmax(-1))


@pytest.mark.parametrize("model", STREAMABLE)
def test_streaming_state_does_not_grow_with_length(model):
    streaming = StreamingEncoder(_task(model, CAUSAL).encoder)
    inputs, lengths = _batch(64, seed=1)
    state = streaming.init_state(4, dtype=torch.float64)
    initial = state_numel(state)
    assert initial > 0
    with torch.no_grad():
        for t in range(inputs.shape[1]):
            features, state = streaming.step(inputs[:, t], lengths > t, state)
            assert state_numel(state) == initial, f"state grew at step {t}"
    assert features.shape == (4, streaming.d_model)


@pytest.mark.parametrize(
    ("model", "overrides", "reason"),
    [
        ("s4d", [], "bidirectional"),
        ("psn_ssm", CAUSAL, "fixed length T=60"),
        ("masked_psn_ssm", CAUSAL, "fixed length T=60"),
        ("prf", ["model.encoder.layer.bidirectional=true"], "bidirectional"),
    ],
)
def test_models_that_cannot_stream_are_refused_with_the_reason(model, overrides, reason):
    with pytest.raises(StreamingError, match=reason):
        _task(model, overrides).stream()


def test_streaming_needs_eval_mode():
    streaming = StreamingEncoder(_task("s4d", CAUSAL).encoder).train()
    with pytest.raises(StreamingError, match=r"\.eval\(\)"):
        streaming.step(torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.bool), streaming.init_state(2))


def test_s4d_recurrence_is_the_convolution():
    """The recurrent form with the kernel's zero-order hold gives the FFT convolution's outputs."""
    torch.manual_seed(0)
    layer = S4D(8, d_state=6, init="legs", bidirectional=False).double()
    u = torch.randn(3, 41, 8, dtype=torch.float64)
    state = layer.init_state(3, dtype=torch.float64)
    steps = []
    for u_t in u.unbind(1):
        y_t, state = layer.step(u_t, state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), layer(u), rtol=1e-10, atol=1e-12)
    assert state.shape == (3, 8, 3) and state.dtype == torch.complex128


@pytest.mark.parametrize("model", ["s4d", "lif_ssm"])
def test_language_model_features_stream(model):
    """The language-model recipe (causal, pre-norm LayerNorm, adaptive input) gives every position's
    features step by step as in parallel."""
    cfg = compose_train([f"model={model}", "data=wikitext103", "profile=tiny", "model.encoder.n_layers=2"])
    torch.manual_seed(0)
    encoder = instantiate(cfg.model.encoder, vocab_size=VOCAB)
    task = instantiate(cfg.task, encoder=encoder, vocab_size=VOCAB).double().eval()
    inputs, lengths = _batch(23, seed=3)
    with torch.no_grad():
        parallel = task(inputs, lengths)
        task.stream()
        streamed = task(inputs, lengths)
    assert streamed.shape == parallel.shape == (4, 23, encoder.d_model)
    torch.testing.assert_close(streamed, parallel, rtol=1e-9, atol=1e-12)
