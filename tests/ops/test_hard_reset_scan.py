"""The hard-reset scan (lra_snn/ops/hard_reset_scan; SpikingSSMs, arXiv 2408.14909): every path, the
PyTorch one with the compiled and with the torch host loop and the Triton one (interpreter on the CPU,
NaN-poisoned outputs, odd lengths, chunk and channel-tile edges), against the time loop of the
definition: spikes bit for bit and potentials within 1e-12 in float64, gradients as autograd through
the loop, float32 too, firing rates from ~1 % to ~50 %, inputs within 1e-9 of the threshold; the
gradient against its closed form, cut at every spike; the host loops bit for bit."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops.dispatch import TritonUnavailable
from lra_snn.ops.hard_reset_scan import hard_reset_scan
from lra_snn.ops.hard_reset_scan import offsets as offsets_module
from lra_snn.ops.hard_reset_scan.naive import hard_reset_scan_naive
from lra_snn.ops.hard_reset_scan.offsets import host_offsets, offsets_kernel
from lra_snn.ops.hard_reset_scan.torch import hard_reset_scan_torch
from lra_snn.ops.tiles import Tile, override_tiles

needs_numba = pytest.mark.skipif(offsets_kernel() is None, reason="numba is not installed: no compiled loop")

V_TH, DECAY = 1.0, 0.125
CHANNELS = 19  # interpreter tiles hold 16 channels: a full tile and a partial one
# input regime -> (scale, bias, lowest and highest accepted firing rate)
REGIMES = {"sparse": (0.45, 0.0, 0.005, 0.03), "dense": (1.0, 1.0, 0.4, 0.6)}
# path -> (backend, host loop); "torch_loop": the PyTorch path without numba (CUDA, other dtypes)
PATHS = {"torch": ("torch", "compiled"), "torch_loop": ("torch", "torch"), "triton": ("triton", None)}


def gaussian(shape, scale, bias, seed, device="cpu", dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale + bias).to(device, dtype)


@pytest.fixture
def select_path(monkeypatch):
    """``select_path(path)``: the backend of ``path``, with the host loop it names in place."""

    def select(path: str) -> str:
        backend, loop = PATHS[path]
        if loop == "torch":
            monkeypatch.setattr(offsets_module, "offsets_kernel", lambda: None)
        elif loop == "compiled" and offsets_kernel() is None:
            pytest.skip("numba is not installed: no compiled loop")
        return backend

    return select


def outputs_and_gradient(fn, x: torch.Tensor, seed: int):
    """Spikes, potentials and the gradient to ``x`` of a random weighting of both."""
    leaf = x.clone().requires_grad_()
    spikes, potentials = fn(leaf)
    weights = [gaussian(x.shape, 1.0, 0.0, seed + i, x.device, x.dtype) for i in (0, 1)]
    (grad,) = torch.autograd.grad((spikes * weights[0]).sum() + (potentials * weights[1]).sum(), leaf)
    return spikes.detach(), potentials.detach(), grad


def assert_matches_the_time_loop(path: str, backend: str, x: torch.Tensor, tolerance: float) -> torch.Tensor:
    """The path's spikes equal the loop's, potentials and gradient within ``tolerance``; returns the spikes."""
    spikes, potentials, grad = outputs_and_gradient(
        lambda t: hard_reset_scan(t, V_TH, DECAY, backend=backend), x, seed=7
    )
    expected_spikes, expected_potentials, expected_grad = outputs_and_gradient(
        lambda t: hard_reset_scan_naive(t, V_TH, DECAY), x, seed=7
    )
    for name, got in (("spikes", spikes), ("potentials", potentials), ("gradient", grad)):
        assert got.dtype == x.dtype and not torch.isnan(got).any(), f"{path} {name}: NaN (an unwritten element?)"
    assert torch.equal(spikes, expected_spikes), path
    torch.testing.assert_close(potentials, expected_potentials, rtol=0, atol=tolerance)
    torch.testing.assert_close(grad, expected_grad, rtol=tolerance, atol=tolerance)
    return spikes


@pytest.mark.parametrize("regime", sorted(REGIMES))
@pytest.mark.parametrize("length", [1, 7, 33])
@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_path_matches_the_time_loop_in_float64(path, length, regime, select_path, device):
    scale, bias, _, _ = REGIMES[regime]
    x = gaussian((2, length, CHANNELS), scale, bias, seed=length, device=device)
    assert_matches_the_time_loop(path, select_path(path), x, 1e-12)


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_the_regimes_reach_their_firing_rates(regime):
    scale, bias, low, high = REGIMES[regime]
    spikes, _ = hard_reset_scan(gaussian((4, 257, 16), scale, bias, seed=1), V_TH, DECAY)
    assert low <= spikes.mean().item() <= high


@pytest.mark.parametrize("tile", [Tile(4, 8, 1), Tile(8, 4, 1)], ids=["chunk4_block8", "chunk8_block4"])
def test_the_kernel_across_chunk_and_channel_tile_edges(tile, device):
    """Many chunks and channel tiles, each with a partial last one (19 channels, 37 steps)."""
    x = gaussian((3, 37, CHANNELS), 1.0, 1.0, seed=2, device=device)
    with override_tiles(sequential=tile, scan=tile):
        assert_matches_the_time_loop("triton", "triton", x, 1e-12)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_path_matches_the_time_loop_in_float32(path, select_path, device):
    x = gaussian((2, 33, CHANNELS), 1.0, 1.0, seed=3, device=device, dtype=torch.float32)
    assert_matches_the_time_loop(path, select_path(path), x, 1e-5)


def near_threshold_input(shape, seed: int, device="cpu"):
    """Inputs putting ``u_t`` within 1e-10..1e-9 of ``V_th`` (either side) at about half the steps,
    built with a loop of the definition; returns them and the planted steps and signs."""
    g = torch.Generator().manual_seed(seed)
    planted = torch.rand(shape, generator=g) < 0.5
    above = torch.rand(shape, generator=g) < 0.5
    size = torch.rand(shape, generator=g, dtype=torch.float64) * 0.9e-9 + 1e-10
    target = torch.where(above, size, -size)
    free = torch.randn(shape, generator=g, dtype=torch.float64) + 0.5
    after_reset = torch.zeros(shape[0], shape[2], dtype=torch.float64)
    steps = []
    for t in range(shape[1]):
        carried = DECAY * after_reset
        x_t = torch.where(planted[:, t], (V_TH - carried) + target[:, t], free[:, t])
        potential = carried + x_t
        after_reset = torch.where(potential - V_TH >= 0, 0.0, potential)
        steps.append(x_t)
    return torch.stack(steps, 1).to(device), planted.to(device), above.to(device)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_inputs_within_1e_9_of_the_threshold(path, select_path, device):
    x, planted, above = near_threshold_input((2, 41, CHANNELS), seed=4, device=device)
    expected, potentials = hard_reset_scan_naive(x, V_TH, DECAY)
    margins = (potentials - V_TH)[planted]
    assert planted.double().mean() > 0.4 and (margins.abs() <= 1e-9).all()
    assert torch.equal(expected[planted], above[planted].double()), "both sides of the threshold are planted"
    spikes, _ = hard_reset_scan(x, V_TH, DECAY, backend=select_path(path))
    assert torch.equal(spikes, expected)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_potential_exactly_at_the_threshold_fires(path, select_path, device):
    """u = 1, then 0.5, then 0.125 * 0.5 + 0.9375 = 1 exactly (binary fractions): H(0) = 1 on every path."""
    x = torch.tensor([1.0, 0.5, 0.9375, 0.0], dtype=torch.float64, device=device).view(1, 4, 1).repeat(1, 1, 3)
    spikes, potentials = hard_reset_scan(x, V_TH, DECAY, backend=select_path(path))
    assert potentials[0, :, 0].tolist() == [1.0, 0.5, 1.0, 0.0]
    assert spikes[0, :, 0].tolist() == [1.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_the_gradient_is_cut_at_every_spike(backend, device):
    """``du_t/dx_j = decay^(t-j) prod_{k=j..t-1} (1 - s_k)``, the closed form, row by row."""
    x = torch.tensor([0.3, 1.4, 0.2, 0.5, 2.0, 1.5, 0.1, 0.4, 0.9], dtype=torch.float64, device=device)
    length = x.shape[0]
    leaf = x.view(1, length, 1).clone().requires_grad_()
    spikes, potentials = hard_reset_scan(leaf, V_TH, DECAY, backend=backend)
    fired = spikes.detach().flatten()
    assert fired.tolist() == [0, 1, 0, 0, 1, 1, 0, 0, 0]
    jacobian = torch.stack(
        [torch.autograd.grad(potentials[0, t, 0], leaf, retain_graph=True)[0].flatten() for t in range(length)]
    )
    expected = torch.zeros(length, length, dtype=torch.float64, device=device)
    for t in range(length):
        for j in range(t + 1):
            expected[t, j] = DECAY ** (t - j) * torch.prod(1 - fired[j:t])
    torch.testing.assert_close(jacobian, expected, rtol=1e-14, atol=0)
    assert jacobian[3, 1] == 0 and jacobian[3, 2] == DECAY, "cut behind the spike at step 1, not before"


@needs_numba
@pytest.mark.parametrize("length", [1, 2, 7, 33, 1001])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("inputs", ["random", "ties"])
def test_the_compiled_and_the_torch_loop_give_the_same_offsets_bit_for_bit(length, dtype, inputs):
    shape = (3, length, 7)
    if inputs == "random":
        reset_free = gaussian(shape, 1.0, 0.6, seed=length, dtype=dtype)
    else:  # multiples of 1/8 reach V_th = 1 exactly: a margin of 0 fires
        reset_free = torch.randint(0, 17, shape, generator=torch.Generator().manual_seed(length)).to(dtype) / 8
    v_th, decay = torch.tensor(V_TH, dtype=dtype), torch.tensor(DECAY, dtype=dtype)
    compiled = host_offsets(reset_free, v_th, decay)
    looped = offsets_module._offsets_torch(reset_free, v_th, decay)
    assert compiled.dtype == dtype and torch.equal(compiled, looped)
    assert torch.equal(host_offsets(reset_free.transpose(0, 2).contiguous().transpose(0, 2), v_th, decay), compiled)
    if inputs == "ties" and length > 7:
        assert ((reset_free - compiled) - v_th == 0).any()


def test_without_numba_the_torch_loop_runs(monkeypatch):
    monkeypatch.setattr(offsets_module, "offsets_kernel", lambda: None)
    calls = []
    torch_loop = offsets_module._offsets_torch
    monkeypatch.setattr(offsets_module, "_offsets_torch", lambda *args: calls.append(1) or torch_loop(*args))
    x = gaussian((2, 9, 3), 1.0, 1.0, seed=5)
    spikes, _ = hard_reset_scan(x, V_TH, DECAY, backend="torch")
    assert calls == [1] and torch.equal(spikes, hard_reset_scan_naive(x, V_TH, DECAY)[0])


def test_the_threshold_and_decay_come_from_the_arguments():
    x = gaussian((2, 33, 5), 1.0, 1.0, seed=6)
    default, _ = hard_reset_scan(x, V_TH, DECAY)
    for v_th, decay in ((0.7, DECAY), (V_TH, 0.9)):
        spikes, _ = hard_reset_scan(x, v_th, decay)
        assert torch.equal(spikes, hard_reset_scan_naive(x, v_th, decay)[0]) and not torch.equal(spikes, default)


def test_the_torch_path_defaults_to_the_triangle_surrogate_and_keeps_float64_constants():
    x = gaussian((2, 17, 3), 0.8, 1.0, seed=8).requires_grad_()
    gradients = [
        torch.autograd.grad(out[0].sum(), x)[0]
        for out in (hard_reset_scan_torch(x, V_TH, DECAY), hard_reset_scan_torch(x, V_TH, DECAY, "triangle"))
    ]
    assert torch.equal(*gradients)
    for v_th, decay in ((0.3, 0.7), (0.7, 0.1)):  # not exact in float32
        got, expected = hard_reset_scan_torch(x, v_th, decay), hard_reset_scan_naive(x, v_th, decay)
        assert torch.equal(got[0], expected[0])
        torch.testing.assert_close(got[1], expected[1], rtol=0, atol=1e-12)


def test_dispatch_explains_and_is_never_automatic_on_cpu(monkeypatch, chosen_backends):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(
        TritonUnavailable, match="backend='triton' was forced but cannot run: hard_reset_scan: tensors are on cpu"
    ):
        hard_reset_scan(torch.zeros(1, 3, 2), V_TH, DECAY, backend="triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    hard_reset_scan(torch.zeros(1, 3, 2), V_TH, DECAY)  # not the interpreter: the compiled loop
    hard_reset_scan(torch.zeros(1, 3, 2).half(), V_TH, DECAY)  # float16, which the compiled loop does not take: PyTorch
    assert chosen_backends == [("hard_reset_scan", "compiled"), ("hard_reset_scan", "torch")]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((torch.zeros(3, 2), V_TH, DECAY), "batch, length >= 1, channels"),
        ((torch.zeros(1, 0, 2), V_TH, DECAY), "batch, length >= 1, channels"),
        ((torch.zeros(1, 3, 2), V_TH, 1.5), "decay must lie in"),
        ((torch.zeros(1, 3, 2), float("nan"), DECAY), "v_th must be finite"),
        ((torch.zeros(1, 3, 2), V_TH, DECAY, "sigmoid"), "unknown surrogate"),
        ((torch.zeros(1, 3, 2), V_TH, DECAY, "triangle", "cuda"), "unknown backend"),
    ],
)
def test_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        hard_reset_scan(*arguments)


@pytest.mark.gpu
def test_full_size_on_gpu(device):
    x = gaussian((2, 16385, 256), 1.0, 1.0, seed=0, device=device)
    dy = gaussian(x.shape, 1.0, 0.0, seed=1, device=device)
    results = []
    for backend in ("triton", "torch"):
        leaf = x.clone().requires_grad_()
        spikes, potentials = hard_reset_scan(leaf, V_TH, DECAY, backend=backend)
        (grad,) = torch.autograd.grad(spikes, leaf, dy)
        results.append((spikes.detach(), potentials.detach(), grad))
    (spikes, potentials, grad), (expected_spikes, expected_potentials, expected_grad) = results
    torch.testing.assert_close(spikes, expected_spikes, rtol=0, atol=0)
    torch.testing.assert_close(potentials, expected_potentials, rtol=0, atol=1e-12)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-12)
