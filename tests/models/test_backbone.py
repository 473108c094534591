"""Backbone and classification heads: padding never changes a sequence's output; pair inputs;
optimizer groups from parameter tags; the warmup-cosine schedule."""

import pytest
import torch
from functools import partial
from torch import nn

from lra_snn.models.backbone import SequenceEncoder
from lra_snn.models.blocks import S4DBlock
from lra_snn.training.optim import param_groups, warmup_cosine
from lra_snn.tasks.classification import ClassificationTask


def _encoder(**kwargs):
    return SequenceEncoder(d_model=8, n_layers=2, vocab_size=11, layer=partial(S4DBlock, d_state=4, bidirectional=True),
                           **kwargs)


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
    pooled = [[encoder(docs[i, j, None], lengths[i, j, None]).sum(1) / lengths[i, j] for j in range(2)]
              for i in range(2)]
    expected = torch.cat([model.head(a, b) for a, b in pooled])
    torch.testing.assert_close(model(docs, lengths), expected, rtol=1e-5, atol=1e-6)


def test_real_valued_inputs_and_errors():
    encoder = SequenceEncoder(d_model=8, n_layers=1, d_input=1, layer=partial(S4DBlock, d_state=4))
    model = ClassificationTask(encoder, n_classes=2)
    assert model(torch.randn(2, 5, 1), torch.tensor([5, 3])).shape == (2, 2)
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
    assert groups["default"]["weight_decay"] == 0.05 and groups["no_decay"]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))


def test_warmup_cosine_schedule():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_cosine(optimizer, warmup_steps=4, total_steps=14)
    lrs = []
    for _ in range(15):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0) and lrs[9] == pytest.approx(0.5) and lrs[14] == pytest.approx(0.0)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
