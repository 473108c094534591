"""The surrogates as Triton device functions (lra_snn/ops/surrogate/triton.py) equal the PyTorch
spike functions' gradients (lra_snn/ops/surrogate), under the interpreter on the CPU."""

from __future__ import annotations

import pytest
import torch

triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")

from lra_snn.ops.surrogate import SURROGATES, surrogate_derivative  # noqa: E402
from lra_snn.ops.surrogate.triton import SURROGATE_CODES, surrogate_slope  # noqa: E402


@triton.jit
def slope_kernel(v_ptr, out_ptr, n, SURROGATE: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.arange(0, BLOCK)
    ok = offsets < n
    tl.store(out_ptr + offsets, surrogate_slope(tl.load(v_ptr + offsets, mask=ok, other=0.0), SURROGATE), mask=ok)


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_device_slopes_equal_the_torch_surrogate_gradients(surrogate, device):
    assert set(SURROGATE_CODES) == set(SURROGATES)
    v = torch.tensor(
        [-2.0, -1.0, -0.75, -0.5, -0.25, 0.0, 0.1, 0.5, 0.5000001, 1.0, 3.0], dtype=torch.float64, device=device
    )
    out = torch.full_like(v, float("nan"))
    slope_kernel[(1,)](v, out, v.numel(), SURROGATE=SURROGATE_CODES[surrogate], BLOCK=16)
    torch.testing.assert_close(out, surrogate_derivative(v, surrogate), rtol=1e-15, atol=1e-15)
