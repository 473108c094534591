"""Backbone and classification heads: the residual block and the 1-layer encoder against outputs computed by
hand; padding never changes a sequence's output; pair inputs; optimizer groups from parameter tags; the
warmup-cosine schedule."""

import itertools
from functools import partial

import pytest
import torch
from torch import nn

from lra_snn.models.backbone import ResidualBlock, SequenceEncoder
from lra_snn.models.blocks import S4DBlock
from lra_snn.optim.groups import param_groups
from lra_snn.optim.schedule import warmup_cosine
from lra_snn.tasks.classification import ClassificationTask


def _encoder(**kwargs):
    return SequenceEncoder(
        d_model=8, n_layers=2, vocab_size=11, layer=partial(S4DBlock, d_state=4, bidirectional=True), **kwargs
    )


def _classifier(pool="mean", pair=False, **kwargs):
    return ClassificationTask(_encoder(**kwargs), n_classes=3, pool=pool, pair=pair)


@pytest.mark.parametrize("norm,prenorm,pool", [("batch", False, "mean"), ("layer", True, "last")])
def test_output_independent_of_padding(norm, prenorm, pool):
    torch.manual_seed(0)
    model = _classifier(norm=norm, prenorm=prenorm, pool=pool).eval()
    tokens = torch.randint(3, 11, (1, 13))
    padded = torch.cat([tokens, torch.zeros(1, 20, dtype=torch.long)], 1)
    length = torch.tensor([13])
    torch.testing.assert_close(model(tokens, length), model(padded, length), rtol=1e-5, atol=1e-6)


def test_pair_inputs_encode_each_document_like_a_single_one():
    torch.manual_seed(1)
    model = _classifier(pair=True).eval()
    docs = torch.randint(3, 11, (2, 2, 9))
    lengths = torch.tensor([[9, 4], [6, 9]])
    encoder = model.encoder
    pooled = [
        [encoder(docs[i, j, None], lengths[i, j, None]).sum(1) / lengths[i, j] for j in range(2)] for i in range(2)
    ]
    expected = torch.cat([model.head(a, b) for a, b in pooled])
    torch.testing.assert_close(model(docs, lengths), expected, rtol=1e-5, atol=1e-6)


class Square(nn.Module):
    """A block layer whose output is known and not affine in its input: x -> x ** 2, elementwise."""

    def __init__(self, d_model: int = 0) -> None:
        super().__init__()

    def forward(self, x):
        return x**2


def layer_norm(values: list[float]) -> torch.Tensor:
    """LayerNorm at its initial weight 1 and bias 0, by its definition: (v - mean) / sqrt(var + 1e-5)."""
    v = torch.tensor(values)
    return (v - v.mean()) / torch.sqrt(v.var(unbiased=False) + 1e-5)


def test_residual_block_adds_its_input_then_normalises_post_norm_or_normalises_first_pre_norm():
    x = torch.tensor([[[1.0, 2.0, 3.0]]])
    post = ResidualBlock(Square(), 3, "none", prenorm=False, dropout=0.0)
    assert torch.equal(post(x), torch.tensor([[[2.0, 6.0, 12.0]]]))  # x + x^2
    post_layer = ResidualBlock(Square(), 3, "layer", prenorm=False, dropout=0.0)
    torch.testing.assert_close(post_layer(x)[0, 0], layer_norm([2.0, 6.0, 12.0]))  # LN(x + x^2)
    pre = ResidualBlock(Square(), 3, "layer", prenorm=True, dropout=0.0)
    torch.testing.assert_close(pre(x)[0, 0], torch.tensor([1.0, 2.0, 3.0]) + layer_norm([1.0, 2.0, 3.0]) ** 2)


def one_layer_encoder(**kwargs) -> SequenceEncoder:
    """d_model 3, one Square block with LayerNorm; token 1 embeds as (1, 2, 3), token 2 as (3, 1, 0)."""
    encoder = SequenceEncoder(d_model=3, n_layers=1, vocab_size=3, layer=Square, norm="layer", **kwargs)
    with torch.no_grad():
        encoder.encoder.weight.copy_(torch.tensor([[5.0, 5.0, 5.0], [1.0, 2.0, 3.0], [3.0, 1.0, 0.0]]))
    return encoder


def test_one_layer_post_norm_encoder_output_by_hand():
    encoder = one_layer_encoder()  # post-norm by default
    with torch.no_grad():  # the block's norm scales by 2 and shifts by 1: a further norm would undo that
        encoder.blocks[0].norm.norm.weight.fill_(2.0)
        encoder.blocks[0].norm.norm.bias.fill_(1.0)
    out = encoder(torch.tensor([[1, 2, 0]]), torch.tensor([2]))[0]
    torch.testing.assert_close(out[0], 2 * layer_norm([2.0, 6.0, 12.0]) + 1)  # LN(e + e^2), e = (1, 2, 3)
    torch.testing.assert_close(out[1], 2 * layer_norm([12.0, 2.0, 0.0]) + 1)  # e = (3, 1, 0)
    assert torch.equal(out[2], torch.zeros(3))  # padding


def test_one_layer_pre_norm_encoder_ends_with_the_final_norm():
    out = one_layer_encoder(prenorm=True)(torch.tensor([[1, 2, 0]]), torch.tensor([2]))[0]
    for position, e in enumerate(([1.0, 2.0, 3.0], [3.0, 1.0, 0.0])):
        block = torch.tensor(e) + layer_norm(e) ** 2  # e + LN(e)^2
        torch.testing.assert_close(out[position], layer_norm(block.tolist()))  # then the final LN
    assert torch.equal(out[2], torch.zeros(3))


def test_real_valued_inputs_go_through_a_linear_encoder():
    encoder = SequenceEncoder(d_model=2, n_layers=1, d_input=1, layer=Square, norm="none")
    with torch.no_grad():
        encoder.encoder.weight.copy_(torch.tensor([[1.0], [2.0]]))
        encoder.encoder.bias.zero_()
    # e = (x, 2x) at x = 1, 3; then e + e^2; the third step is padding
    out = encoder(torch.tensor([[[1.0], [3.0], [7.0]]]), torch.tensor([2]))
    assert torch.equal(out, torch.tensor([[[2.0, 6.0], [12.0, 42.0], [0.0, 0.0]]]))


def test_encoder_and_task_errors():
    with pytest.raises(ValueError, match="exactly one of vocab_size"):
        SequenceEncoder(d_model=8, n_layers=1, layer=S4DBlock)
    with pytest.raises(ValueError, match="unknown pooling"):
        _classifier(pool="max")
    with pytest.raises(ValueError, match="unknown norm"):
        _classifier(norm="group")


def test_param_groups_follow_tags():
    model = _classifier()
    groups = {g["name"]: g for g in param_groups(model, lr=0.01, weight_decay=0.05, dynamics_lr=1e-3)}
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    ssm = model.encoder.blocks[0].layer.ssm
    assert {id(ssm.kernel.log_dt), id(ssm.kernel.A_imag), id(ssm.kernel.log_neg_A_real)} <= ids["dynamics"]
    assert id(model.encoder.encoder.weight) in ids["no_decay"]
    assert id(model.head.bias) in ids["no_decay"] and id(model.head.weight) in ids["default"]
    assert id(model.encoder.blocks[0].norm.norm.weight) in ids["no_decay"]
    assert groups["dynamics"]["lr"] == 1e-3 and groups["dynamics"]["weight_decay"] == 0.0
    assert groups["default"]["lr"] == 0.01 and groups["default"]["weight_decay"] == 0.05
    assert groups["no_decay"]["lr"] == 0.01 and groups["no_decay"]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))


def schedule(steps: int, **kwargs) -> list[float]:
    """The learning rate of the first ``steps`` steps of ``warmup_cosine(**kwargs)`` around a base lr of 1."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_cosine(optimizer, **kwargs)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_cosine_schedule():
    lrs = schedule(17, warmup_steps=4, total_steps=14)
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0) and lrs[9] == pytest.approx(0.5) and lrs[14] == pytest.approx(0.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))
    assert lrs[15:] == pytest.approx([0.0, 0.0])  # past total_steps: held at the end value


def test_warmup_cosine_decays_to_min_ratio_and_refuses_no_steps():
    lrs = schedule(4, warmup_steps=0, total_steps=2, min_ratio=0.1)
    assert lrs == pytest.approx([1.0, 0.55, 0.1, 0.1])  # 0.1 + 0.9 * (1 + cos(pi * step / 2)) / 2
    assert schedule(3, warmup_steps=0, total_steps=1) == pytest.approx([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="total_steps must be positive, got 0"):
        warmup_cosine(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), warmup_steps=0, total_steps=0)
