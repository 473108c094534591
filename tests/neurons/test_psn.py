"""PSN, masked PSN and sliding PSN: parallel == sequential == step, gradients, errors,
streaming, the lambda schedule callback, and equality with SpikingJelly's definitions."""

from __future__ import annotations

import math
import types

import pytest
import torch
from torch import nn
from torch.func import functional_call

from lra_snn.neurons import build_neuron
from lra_snn.neurons import psn as psn_module
from lra_snn.neurons.psn import PSN, MaskedPSN, SlidingPSN
from lra_snn.optim.groups import group_of
from lra_snn.training.callbacks import MaskedPSNLambdaSchedule, masked_psn_lambda

F64_ATOL = 1e-9
F32_TOL = 1e-5
# (length, batch, channels): odd lengths on several shapes, the long one on one shape (speed)
CASES = [(length, b, c) for length in (1, 7, 33) for b, c in [(1, 1), (2, 3), (4, 16)]] + [(1001, 2, 3)]


def make(name: str, channels: int, length: int, k: int = 3, dtype=torch.float64, seed: int = 0):
    torch.manual_seed(seed)
    kwargs = {"psn": {"T": length}, "masked_psn": {"T": length, "k": k}, "sliding_psn": {"k": k}}[name]
    neuron = build_neuron(name, channels, **kwargs).to(dtype)
    if name == "masked_psn":
        neuron.lambda_ = 1.0
    if name == "sliding_psn":  # move away from the (..., 1/4, 1/2, 1) init so the test sees every tap
        with torch.no_grad():
            neuron.weight.uniform_(-1, 1)
    return neuron


def stream(neuron, x: torch.Tensor):
    """Potentials and spikes from the step form, one step at a time."""
    state = neuron.init_state(x.shape[0], x.device, x.dtype)
    potentials, spikes = [], []
    for t in range(x.shape[1]):
        h_t, _ = neuron.potential_step(x[:, t], state)
        s_t, state = neuron.step(x[:, t], state)
        potentials.append(h_t)
        spikes.append(s_t)
    return torch.stack(potentials, 1), torch.stack(spikes, 1)


def assert_spikes_agree(spikes: torch.Tensor, reference: torch.Tensor, potential: torch.Tensor, dtype) -> None:
    """Identical in float64; in float32 they may differ only where |H| (threshold at 0) < 1e-5."""
    differ = spikes != reference
    if dtype == torch.float64:
        assert not differ.any(), f"{int(differ.sum())} spikes differ"
    else:
        assert (potential[differ].abs() < F32_TOL).all(), "float32 spikes differ away from the threshold"


def assert_forms_agree(neuron, x: torch.Tensor, streams: bool) -> float:
    """parallel == sequential (== step when ``streams``); returns the firing rate."""
    tol = dict(rtol=0, atol=F64_ATOL) if x.dtype == torch.float64 else dict(rtol=F32_TOL, atol=F32_TOL)
    h_par = neuron.potential(x)
    h_seq = neuron.potential_sequential(x)
    torch.testing.assert_close(h_par, h_seq, **tol)
    s_par = neuron(x)
    rate = float(neuron.firing_rate)
    s_seq = neuron.forward_sequential(x)
    assert s_par.shape == x.shape and set(s_par.unique().tolist()) <= {0.0, 1.0}
    assert_spikes_agree(s_seq, s_par, h_par, x.dtype)
    if streams:
        h_step, s_step = stream(neuron, x)
        torch.testing.assert_close(h_step, h_par, **tol)
        assert_spikes_agree(s_step, s_par, h_par, x.dtype)
    return rate


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("length,batch,channels", CASES)
@pytest.mark.parametrize("name", ["psn", "masked_psn", "sliding_psn"])
def test_parallel_sequential_step_agree(name, length, batch, channels, dtype):
    neuron = make(name, channels, length, k=5, dtype=dtype, seed=length + batch)
    gen = torch.Generator().manual_seed(7 * length + channels)
    x = (2.0 * torch.randn(batch, length, channels, generator=gen, dtype=torch.float64)).to(dtype)
    assert_forms_agree(neuron, x, streams=name != "psn")


@pytest.mark.parametrize("name,sparse_scale", [("psn", 0.8), ("masked_psn", 2.0), ("sliding_psn", 0.35)])
def test_firing_rates_span_sparse_to_dense(name, sparse_scale):
    length, rates = 33, []
    for scale in (sparse_scale, 4 * sparse_scale, 30.0):
        neuron = make(name, 8, length, k=4)
        gen = torch.Generator().manual_seed(int(scale * 10))
        x = scale * torch.randn(4, length, 8, generator=gen, dtype=torch.float64)
        rates.append(assert_forms_agree(neuron, x, streams=name != "psn"))
    assert 0.003 <= min(rates) <= 0.03 and max(rates) >= 0.4, rates


@pytest.mark.parametrize("name", ["psn", "masked_psn", "sliding_psn"])
def test_inputs_on_and_near_the_threshold(name):
    """With identity dynamics H_t = x_t - 1: x = 1 exactly spikes (H >= 0), 1 -+ 1e-12 splits."""
    length = 9
    neuron = make(name, 4, length, k=3)
    with torch.no_grad():
        if name == "sliding_psn":
            neuron.weight.zero_()[-1] = 1.0
        else:
            neuron.weight.copy_(torch.eye(length))
    offsets = torch.tensor([0.0, 1e-12, -1e-12, 1e-7, -1e-7, 0.0, 3e-9, -3e-9, 0.0], dtype=torch.float64)
    x = (1.0 + offsets).view(1, length, 1).expand(2, length, 4).contiguous()
    expected = (offsets >= 0).to(torch.float64).view(1, length, 1).expand_as(x)
    assert torch.equal(neuron(x), expected)
    assert torch.equal(neuron.forward_sequential(x), expected)
    if name != "psn":
        assert torch.equal(stream(neuron, x)[1], expected)


@pytest.mark.parametrize("name", ["psn", "masked_psn", "sliding_psn"])
def test_surrogate_gradients_parallel_equal_sequential(name):
    neuron = make(name, 3, 13, k=4)
    x = 2.0 * torch.randn(2, 13, 3, dtype=torch.float64)
    upstream = torch.randn_like(x)
    grads = []
    for run in (neuron.forward, neuron.forward_sequential):
        neuron.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_(True)
        (run(xi) * upstream).sum().backward()
        grads.append([xi.grad, neuron.weight.grad, neuron.bias.grad])
    for par, seq in zip(*grads):
        assert par.abs().sum() > 0
        torch.testing.assert_close(par, seq, rtol=0, atol=F64_ATOL)


def potential_and_gradients(neuron, potential, length: int) -> list[torch.Tensor]:
    """``potential`` of a fixed random (2, length, 3) float64 input, and the gradients of x, the weight
    and the bias from a fixed random upstream gradient (the same draws for every call)."""
    gen = torch.Generator().manual_seed(length)
    x = 2.0 * torch.randn(2, length, 3, generator=gen, dtype=torch.float64)
    upstream = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    neuron.zero_grad(set_to_none=True)
    x.requires_grad_(True)
    h = potential(x)
    (h * upstream).sum().backward()
    return [h, x.grad, neuron.weight.grad, neuron.bias.grad]


@pytest.mark.parametrize("k,length", [(1, 33), (3, 1), (5, 31), (5, 32), (5, 65), (32, 97), (33, 99), (40, 121)])
def test_sliding_psn_blocks_equal_the_definition_forward_and_backward(k, length):
    """The blocked Toeplitz product (blocks of max(k, 32) steps, the last one zero-padded) against
    the time loop of the definition, potentials and gradients of x, w and b, across block edges."""
    neuron = make("sliding_psn", 3, length, k=k, seed=k + length)
    blocked = potential_and_gradients(neuron, neuron.potential, length)
    loop = potential_and_gradients(neuron, neuron.potential_sequential, length)
    for got, expected in zip(blocked, loop):
        torch.testing.assert_close(got, expected, rtol=0, atol=F64_ATOL)


@pytest.mark.parametrize("k,length", [(1, 33), (3, 1), (4, 31), (5, 32), (5, 65), (32, 97), (33, 99), (40, 121)])
def test_masked_psn_band_blocks_equal_the_dense_product_forward_and_backward(k, length):
    """At lambda = 1 the block-banded product (blocks of max(k, 32) steps, the last one zero-padded)
    against the dense ``(W * M_k) X`` (the PSN's product with the masked weight): potentials and
    gradients of x, W and b, across block edges; W's gradient is zero off the band."""
    neuron = make("masked_psn", 3, length, k=k, seed=k + length)
    banded = potential_and_gradients(neuron, neuron.potential_banded, length)
    dense = potential_and_gradients(neuron, lambda x: PSN.potential(neuron, x), length)
    for got, expected in zip(banded, dense):
        torch.testing.assert_close(got, expected, rtol=0, atol=F64_ATOL)
    assert not banded[2][neuron.mask == 0].any()


def test_masked_psn_takes_the_banded_product_from_eight_blocks_at_lambda_one(monkeypatch):
    """Dense below 8 blocks of max(k, 32) steps or while lambda < 1, banded from there on."""
    calls = []
    monkeypatch.setattr(MaskedPSN, "potential_banded", lambda self, x: calls.append(self.T) or x)
    for length, lam in [(255, 1.0), (256, 0.99), (256, 1.0)]:
        neuron = make("masked_psn", 2, length, k=4)
        neuron.lambda_ = lam
        neuron.potential(torch.zeros(1, length, 2, dtype=torch.float64))
    assert calls == [256]


class _Potential(nn.Module):
    """Exposes a neuron's parallel potential as ``forward`` so ``functional_call`` can swap its weights."""

    def __init__(self, neuron):
        super().__init__()
        self.neuron = neuron

    def forward(self, x):
        return self.neuron.potential(x)


@pytest.mark.parametrize(
    "name,length,lam",
    [
        ("psn", 5, None),  # T <= 4 D: batch-major products, W's gradient accumulated batch by batch
        ("psn", 9, None),  # T > 4 D: products over a time-major copy
        ("masked_psn", 5, 0.375),  # a partial mask: the weight blend itself is differentiated
        ("masked_psn", 70, 1.0),  # fully masked: the block-banded product over three blocks (forced)
        ("sliding_psn", 70, None),  # three blocks of the blocked Toeplitz product
    ],
)
def test_potential_gradcheck(name, length, lam, monkeypatch):
    monkeypatch.setattr(psn_module, "_BAND_MIN_BLOCKS", 1)  # the masked PSN's banded product at any length
    neuron = make(name, 2, length, k=3)
    if lam is not None:
        neuron.lambda_ = lam
    wrapper = _Potential(neuron)
    x = torch.randn(2, length, 2, dtype=torch.float64, requires_grad=True)
    weight = neuron.weight.detach().clone().requires_grad_(True)
    bias = neuron.bias.detach().clone().requires_grad_(True)

    def potential(x, weight, bias):
        return functional_call(wrapper, {"neuron.weight": weight, "neuron.bias": bias}, (x,))

    assert torch.autograd.gradcheck(potential, (x, weight, bias))


def test_psn_init_and_tags():
    torch.manual_seed(0)
    neuron = PSN(8, T=50)
    bound = 1 / math.sqrt(50)
    assert neuron.weight.shape == (50, 50) and neuron.weight.abs().max() <= bound
    assert neuron.weight.abs().max() > 0.9 * bound  # uniform over the whole +-1/sqrt(T) range
    assert torch.equal(neuron.bias, torch.full((50,), -1.0))
    sliding = SlidingPSN(8, k=4)
    assert torch.equal(sliding.weight, torch.tensor([0.125, 0.25, 0.5, 1.0]))
    assert sliding.bias.item() == -1.0 and sliding.bias.dim() == 0
    for module in (neuron, sliding, MaskedPSN(8, T=6, k=2)):
        assert {group_of(p) for p in module.parameters()} == {"dynamics"}


def test_masked_weight_follows_definition():
    T, k = 7, 3
    neuron = make("masked_psn", 2, T, k=k)
    mask = torch.tensor(
        [[1.0 if j <= i <= j + k - 1 else 0.0 for j in range(T)] for i in range(T)], dtype=torch.float64
    )
    for lam in (0.0, 0.25, 1.0):
        neuron.lambda_ = lam
        expected = neuron.weight * (lam * mask + (1 - lam) * torch.ones(T, T, dtype=torch.float64))
        torch.testing.assert_close(neuron.effective_weight(), expected, rtol=0, atol=0)


def test_masked_psn_is_causal_with_window_k():
    T, k = 12, 3
    neuron = make("masked_psn", 2, T, k=k)
    x = torch.randn(1, T, 2, dtype=torch.float64)
    base = neuron.potential(x)
    for j in range(T):
        bumped = x.clone()
        bumped[:, j] += 1.0
        changed = (neuron.potential(bumped) - base).abs().amax(dim=(0, 2)) > 0
        assert changed.nonzero().flatten().tolist() == list(range(j, min(T, j + k)))


def test_length_and_cap_errors():
    with pytest.raises(ValueError, match=r"expects sequences of length 8, got length 9.*T=9"):
        PSN(4, T=8)(torch.randn(1, 9, 4))
    with pytest.raises(ValueError, match=r"expects sequences of length 8, got length 7"):
        MaskedPSN(4, T=8, k=2).forward_sequential(torch.randn(1, 7, 4))
    with pytest.raises(ValueError, match=r"T=5000 exceeds the cap max_T=4096.*raise max_T"):
        PSN(4, T=5000)
    with pytest.raises(ValueError, match=r"T=65 exceeds the cap max_T=64"):
        MaskedPSN(4, T=65, k=2, max_T=64)
    assert PSN(4, T=65, max_T=65).T == 65
    with pytest.raises(ValueError, match=r"^SlidingPSN: k=0: expected an integer >= 1$"):
        SlidingPSN(4, k=0)
    with pytest.raises(ValueError, match=r"^MaskedPSN: k=2.5: expected an integer >= 1$"):
        MaskedPSN(4, T=8, k=2.5)
    with pytest.raises(ValueError, match=r"lambda_ must lie in \[0, 1\]"):
        MaskedPSN(4, T=8, k=2).lambda_ = 1.5
    with pytest.raises(ValueError, match="batch, length, channels"):
        SlidingPSN(4, k=2)(torch.randn(3, 4))


def test_step_errors():
    with pytest.raises(RuntimeError, match="PSN cannot run step by step"):
        PSN(4, T=8).step(torch.randn(1, 4), None)
    with pytest.raises(RuntimeError, match="PSN cannot run step by step"):
        PSN(4, T=8).init_state(1)
    masked = MaskedPSN(4, T=3, k=2)
    with pytest.raises(RuntimeError, match=r"lambda_ = 1.*lambda_ is 0"):
        masked.init_state(1)
    masked.lambda_ = 1.0
    state = masked.init_state(1)
    masked.lambda_ = 0.5
    with pytest.raises(RuntimeError, match=r"lambda_ is 0\.5"):
        masked.step(torch.randn(1, 4), state)
    masked.lambda_ = 1.0
    for _ in range(3):
        _, state = masked.step(torch.randn(1, 4), state)
    with pytest.raises(RuntimeError, match=r"already run its 3 steps"):
        masked.step(torch.randn(1, 4), state)


def test_sliding_psn_streams_30k_steps():
    length = 30_000
    neuron = make("sliding_psn", 4, length, k=6, dtype=torch.float32)
    x = torch.randn(1, length, 4, generator=torch.Generator().manual_seed(3))
    state = neuron.init_state(1)
    potentials = []
    with torch.no_grad():
        for t in range(length):
            h_t, state = neuron.potential_step(x[:, t], state)
            potentials.append(h_t)
        h_stream = torch.stack(potentials, 1)
        h_par = neuron.potential(x)
    assert state.shape == (1, 5, 4)  # the state never grows
    assert torch.isfinite(h_stream).all()
    torch.testing.assert_close(h_stream, h_par, rtol=F32_TOL, atol=F32_TOL)


def test_lambda_schedule_values():
    assert [masked_psn_lambda(e, 17) for e in range(4)] == [0.0, 0.5, 1.0, 1.0]
    assert masked_psn_lambda(0, 2) == 0.0 and masked_psn_lambda(1, 2) == 1.0
    assert masked_psn_lambda(0, 1) == 1.0
    for bad in (None, -1, 0):
        with pytest.raises(ValueError, match=r"set trainer\.max_epochs"):
            masked_psn_lambda(0, bad)


def test_lambda_callback_sets_every_masked_psn():
    model = nn.Sequential(MaskedPSN(2, T=4, k=2), nn.Linear(2, 2), MaskedPSN(2, T=4, k=3), SlidingPSN(2, k=2))
    callback = MaskedPSNLambdaSchedule()
    for epoch, expected in [(0, 0.0), (1, 8 / 32), (3, 24 / 32), (4, 1.0), (20, 1.0)]:
        callback.on_train_epoch_start(types.SimpleNamespace(current_epoch=epoch, max_epochs=33), model)
        assert model[0].lambda_ == expected and model[2].lambda_ == expected
    callback.on_train_epoch_start(types.SimpleNamespace(current_epoch=0, max_epochs=1), model)
    assert model[0].lambda_ == 1.0
    with pytest.warns(UserWarning, match="no neuron that schedules lambda_"):
        callback.on_train_epoch_start(types.SimpleNamespace(current_epoch=0, max_epochs=3), nn.Linear(2, 2))


def test_lambda_callback_in_a_real_trainer(tmp_path):
    import lightning.pytorch as pl

    class Toy(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.neuron = MaskedPSN(2, T=4, k=2)
            self.seen: list[float] = []

        def training_step(self, batch, batch_idx):
            self.seen.append(self.neuron.lambda_)
            return (self.neuron(batch[0]) * self.neuron.weight.sum()).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(2, 4, 2)), batch_size=2)

    model = Toy()
    trainer = pl.Trainer(
        max_epochs=5,
        callbacks=[MaskedPSNLambdaSchedule()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    trainer.fit(model)
    assert model.seen == [0.0, 1.0, 1.0, 1.0, 1.0]  # 8 * epoch / 4, capped at 1


# ---- SpikingJelly's published definitions (run only where spikingjelly is importable) ----


def _spikingjelly():
    return pytest.importorskip("spikingjelly.activation_based.neuron", reason="spikingjelly is not installed")


def _compare_multistep(ours, theirs, x: torch.Tensor) -> None:
    """Same spikes and same surrogate gradients; SpikingJelly's layout is (T, N, ...)."""
    x_ours = x.clone().requires_grad_(True)
    x_theirs = x.transpose(0, 1).clone().requires_grad_(True)
    s_ours = ours(x_ours)
    s_theirs = theirs(x_theirs).transpose(0, 1)
    assert torch.equal(s_ours, s_theirs)
    upstream = torch.randn_like(s_ours)
    (s_ours * upstream).sum().backward()
    (s_theirs * upstream).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_theirs.grad.transpose(0, 1), rtol=0, atol=F64_ATOL)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, rtol=0, atol=F64_ATOL)
    torch.testing.assert_close(ours.bias.grad, theirs.bias.grad.reshape(ours.bias.shape), rtol=0, atol=F64_ATOL)


def test_psn_matches_spikingjelly():
    sj = _spikingjelly()
    T = 11
    torch.manual_seed(5)
    theirs = sj.PSN(T=T).double()
    torch.manual_seed(5)  # same seed, same Kaiming-uniform draw: the inits agree
    ours = PSN(3, T=T).double()
    assert torch.equal(ours.weight, theirs.weight) and torch.equal(ours.bias, theirs.bias.flatten())
    _compare_multistep(ours, theirs, 3 * torch.randn(2, T, 3, dtype=torch.float64))


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_masked_psn_matches_spikingjelly(lam):
    sj = _spikingjelly()
    T, k = 10, 3
    theirs = sj.MaskedPSN(k=k, T=T, step_mode="m").double()
    ours = MaskedPSN(3, T=T, k=k).double()
    with torch.no_grad():
        ours.weight.copy_(torch.randn(T, T))
        ours.bias.copy_(torch.randn(T))
        theirs.weight.copy_(ours.weight)
        theirs.bias.copy_(ours.bias.unsqueeze(1))
    ours.lambda_, theirs.lambda_ = lam, lam
    _compare_multistep(ours, theirs, 3 * torch.randn(2, T, 3, dtype=torch.float64))


def test_sliding_psn_matches_spikingjelly():
    sj = _spikingjelly()
    k, length = 4, 13
    theirs = sj.SlidingPSN(k=k, step_mode="m").double()
    ours = SlidingPSN(3, k=k).double()
    assert torch.equal(ours.weight, theirs.weight) and torch.equal(ours.bias, theirs.bias)
    with torch.no_grad():
        ours.weight.copy_(torch.randn(k))
        theirs.weight.copy_(ours.weight)
    _compare_multistep(ours, theirs, 3 * torch.randn(2, length, 3, dtype=torch.float64))


@pytest.mark.parametrize("name", ["masked_psn", "sliding_psn"])
def test_step_form_matches_spikingjelly_single_step(name):
    sj = _spikingjelly()
    functional = pytest.importorskip("spikingjelly.activation_based.functional")
    T, k = 9, 3
    ours = make(name, 3, T, k=k)
    if name == "masked_psn":
        theirs = sj.MaskedPSN(k=k, T=T, lambda_init=1.0, step_mode="s").double()
        with torch.no_grad():
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias.unsqueeze(1))
    else:
        theirs = sj.SlidingPSN(k=k, step_mode="s").double()
        with torch.no_grad():
            theirs.weight.copy_(ours.weight)
    x = 3 * torch.randn(2, T, 3, dtype=torch.float64)
    functional.reset_net(theirs)
    state = ours.init_state(2, dtype=torch.float64)
    for t in range(T):
        s_t, state = ours.step(x[:, t], state)
        assert torch.equal(s_t, theirs(x[:, t]))


def test_sliding_psn_takes_non_contiguous_inputs():
    # a length that fills whole blocks (no padding copy) on a (B, L, D) view of a (B, D, L) tensor,
    # as a bidirectional or transposing block hands it over
    torch.manual_seed(0)
    neuron = SlidingPSN(3, k=4)
    x = torch.randn(2, 3, 64).transpose(1, 2)
    assert not x.is_contiguous()
    assert torch.equal(neuron(x), neuron(x.contiguous()))
