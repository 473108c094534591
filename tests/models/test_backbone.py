"""Backbone: padding never changes a sequence's output; pooling; optimizer groups; schedule."""

import pytest
import torch
from functools import partial
from torch import nn

from lra_snn.models.backbone import SequenceClassifier
from lra_snn.models.blocks import S4DBlock
from lra_snn.optim import param_groups, warmup_cosine


def _classifier(**kwargs):
    return SequenceClassifier(n_classes=3, d_model=8, n_layers=2, vocab_size=11,
                              layer=partial(S4DBlock, d_state=4, bidirectional=True), **kwargs)


@pytest.mark.parametrize("norm,prenorm,pool", [("batch", False, "mean"), ("layer", True, "last")])
def test_output_independent_of_padding(norm, prenorm, pool):
    torch.manual_seed(0)
    model = _classifier(norm=norm, prenorm=prenorm, pool=pool).eval()
    tokens = torch.randint(3, 11, (1, 13))
    padded = torch.cat([tokens, torch.zeros(1, 20, dtype=torch.long)], 1)
    length = torch.tensor([13])
    torch.testing.assert_close(model(tokens, length), model(padded, length), rtol=1e-5, atol=1e-6)


def test_real_valued_inputs_and_errors():
    model = SequenceClassifier(n_classes=2, d_model=8, n_layers=1, d_input=1, layer=partial(S4DBlock, d_state=4))
    assert model(torch.randn(2, 5, 1), torch.tensor([5, 3])).shape == (2, 2)
    with pytest.raises(ValueError, match="exactly one of vocab_size"):
        SequenceClassifier(n_classes=2, d_model=8, n_layers=1, layer=S4DBlock)
    with pytest.raises(ValueError, match="unknown pooling"):
        _classifier(pool="max")
    with pytest.raises(ValueError, match="unknown norm"):
        _classifier(norm="group")


def test_param_groups_follow_tags():
    model = _classifier()
    groups = {g["name"]: g for g in param_groups(model, lr=0.01, weight_decay=0.05, dynamics_lr=1e-3)}
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    ssm = model.backbone.blocks[0].layer.ssm
    assert {id(ssm.kernel.log_dt), id(ssm.kernel.A_imag), id(ssm.kernel.log_neg_A_real)} <= ids["dynamics"]
    assert id(model.backbone.encoder.weight) in ids["no_decay"]
    assert id(model.head.bias) in ids["no_decay"] and id(model.head.weight) in ids["default"]
    assert id(model.backbone.blocks[0].norm.norm.weight) in ids["no_decay"]
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
