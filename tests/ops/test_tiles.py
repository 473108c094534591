"""Tile shapes (lra_snn/ops/tiles.py): overrides, validation, and kernels that give the same
results whatever tile runs them (the GPU benchmark sweeps tiles, so every tile must be correct)."""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops import dispatch, tiles
from lra_snn.ops.dsn import dsn
from lra_snn.ops.dsn.naive import dsn_naive
from lra_snn.ops.lif import lif
from lra_snn.ops.lif.naive import lif_naive
from lra_snn.ops.linear_scan import linear_scan
from lra_snn.ops.linear_scan.naive import linear_scan_naive
from lra_snn.ops.refractory_iteration import refractory_iteration
from lra_snn.ops.refractory_iteration.naive import refractory_iteration_naive
from lra_snn.ops.threshold_scan import threshold_scan
from lra_snn.ops.threshold_scan.naive import threshold_scan_naive
from lra_snn.ops.tiles import Tile, override_tiles


def test_override_is_scoped_and_restored():
    default = tiles.tile("scan")
    with override_tiles(scan=Tile(4, 8, 1)):
        assert tiles.tile("scan") == Tile(4, 8, 1)
        with override_tiles(sequential=Tile(2, 8, 1)):
            assert tiles.tile("sequential") == Tile(2, 8, 1) and tiles.tile("scan") == Tile(4, 8, 1)
        assert tiles.tile("sequential") != Tile(2, 8, 1)
    assert tiles.tile("scan") == default


def test_interpreter_uses_small_tiles(monkeypatch):
    monkeypatch.setattr(dispatch, "interpreter_on", lambda: True)
    assert tiles.tile("scan") == tiles.INTERPRETER_TILE
    monkeypatch.setattr(dispatch, "interpreter_on", lambda: False)
    assert tiles.tile("sequential") == tiles.GPU_TILES["sequential"]


@pytest.mark.parametrize(
    "bad",
    [
        dict(chunk=0, block_d=8, num_warps=1),
        dict(chunk=12, block_d=8, num_warps=1),
        dict(chunk=8, block_d=8, num_warps=3),
    ],
)
def test_tile_rejects_non_powers_of_two(bad):
    with pytest.raises(ValueError, match="power of two"):
        Tile(**bad)


def test_unknown_kind_is_named():
    with pytest.raises(ValueError, match="'vector'"):
        tiles.tile("vector")
    with pytest.raises(ValueError, match="vector"), override_tiles(vector=Tile(4, 4, 1)):
        pass


@pytest.mark.parametrize("scan, sequential", [(Tile(4, 8, 1), Tile(2, 8, 1)), (Tile(32, 4, 1), Tile(8, 32, 1))])
def test_kernels_agree_with_references_on_other_tiles(scan, sequential, device):
    g = torch.Generator().manual_seed(5)
    shape = (2, 37, 11)  # lengths and channels that leave partial chunks and partial channel tiles
    x = (0.4 + 0.8 * torch.randn(shape, generator=g, dtype=torch.float64)).to(device)
    decay = (0.1 + 0.8 * torch.rand(shape, generator=g, dtype=torch.float64)).to(device)
    logits = (2 * torch.randn(shape, generator=g, dtype=torch.float64)).to(device)
    spikes = (torch.rand(shape, generator=g) < 0.4).double().to(device)
    v_th, rho = (
        torch.full((11,), 0.8, dtype=torch.float64, device=device),
        torch.full((11,), 0.3, dtype=torch.float64, device=device),
    )
    with override_tiles(scan=scan, sequential=sequential):
        h = linear_scan(decay, x, backend="triton")
        lif_spikes, count = lif(x, 0.5, 1.0, backend="triton")
        dsn_spikes = dsn(logits, 3 * x, 0.25, 4, False, backend="triton")
        update = refractory_iteration(x - 0.5, spikes, v_th, rho, 0.5, 0.3, backend="triton")
        offsets = threshold_scan(x - 0.5, v_th, 0.5, backend="triton")[1]
    torch.testing.assert_close(h, linear_scan_naive(decay, x), rtol=1e-12, atol=1e-12)
    ref_spikes, ref_count = lif_naive(x, 0.5, 1.0)
    torch.testing.assert_close(lif_spikes, ref_spikes, rtol=0, atol=0)
    torch.testing.assert_close(count, ref_count, rtol=0, atol=0)
    torch.testing.assert_close(dsn_spikes, dsn_naive(logits, 3 * x, 0.25, 4, False), rtol=0, atol=0)
    for got, expected in zip(update, refractory_iteration_naive(x - 0.5, spikes, v_th, rho, 0.5, 0.3)):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(offsets, threshold_scan_naive(x - 0.5, v_th, 0.5)[1], rtol=1e-12, atol=1e-12)
