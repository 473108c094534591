"""PyTorch path of the banded product over time (the sliding PSN's ``H = W X + b`` with the banded
``W``, Fang et al., arXiv 2304.12760): a blocked Toeplitz matrix product.

Time is cut into blocks of ``size = max(k, BAND_BLOCK)`` steps (or L when shorter), and block j of
``H`` is ``current @ X_j + previous @ X_{j-1}``: two batched (size x size) products over (B, L/size,
size, D), the matrices broadcast with stride 0, then ``+ b``. ``block_banded_product`` also serves
any lower-banded weight with a band at most ``size`` steps wide (the masked PSN at lambda = 1).

Measured on the CPU side by side with a single-channel ``F.conv1d`` over (B * D) rows of length L
(one thread, B x D in {16 x 128, 32 x 256}, L in {256, 1024, 4096}, k in {4, 8, 16, 32}): the blocked
product took 0.06-0.56 of the convolution's time at every shape, forward and forward + backward. Of
block sizes k, 64 and 128 at k = 32 none won everywhere; 32 steps keep the two matrices small while
the batched products stay efficient for small k.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

BAND_BLOCK = 32  # time steps per block of the banded products, at least k


def toeplitz_blocks(weight: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """The causal window of ``weight`` (k,) as two (size x size) Toeplitz blocks, ``size >= k - 1``:
    ``current[r, c]`` weighs input ``c`` of an output's own block, ``previous[r, c]`` input ``c`` of the
    block before; both are ``w_{k-1-lag}`` at ``lag = r - c`` (resp. ``size + r - c``) in 0 .. k-1, else 0."""
    k = weight.shape[0]
    rows = torch.arange(size, device=weight.device).unsqueeze(1)
    lags = rows - torch.arange(size, device=weight.device).unsqueeze(0)
    zero = weight.new_zeros(())

    def band(lag: Tensor) -> Tensor:
        inside = (lag >= 0) & (lag < k)
        return torch.where(inside, weight[(k - 1 - lag).clamp(0, k - 1)], zero)

    return band(lags), band(lags + size)


def _blockwise(matrices: Tensor, x_blocks: Tensor) -> Tensor:
    """``matrices[j] @ x_blocks[:, j]`` for every block j of (B, n, size, D) inputs; ``matrices`` is one
    (size x size) matrix shared by all blocks (broadcast with stride 0) or one per block (n, size, size)."""
    batch, blocks, size, channels = x_blocks.shape
    columns = x_blocks.reshape(batch * blocks, size, channels)
    if matrices.dim() == 2:
        return torch.bmm(matrices.expand(batch * blocks, size, size), columns).view(x_blocks.shape)
    return torch.matmul(matrices, x_blocks)


def block_banded_product(current: Tensor, previous: Tensor, x: Tensor, size: int) -> Tensor:
    """``W X`` over the time axis of (B, L, D) inputs for a lower-banded ``W`` whose band is at most
    ``size`` steps wide: time is cut into blocks of ``size`` steps (the last one zero-padded) and
    block j of the result is ``current_j X_j + previous_j X_{j-1}``, two batched products."""
    batch, length, channels = x.shape
    blocks = -(-length // size)
    x_blocks = F.pad(x, (0, 0, 0, blocks * size - length)).reshape(batch, blocks, size, channels)
    h = _blockwise(current, x_blocks)
    if blocks > 1:
        h = h + F.pad(_blockwise(previous, x_blocks[:, :-1]), (0, 0, 0, 0, 1, 0))
    return h.reshape(batch, blocks * size, channels)[:, :length]


def banded_product_torch(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``H`` (B, L, D) of inputs ``x`` (B, L, D), window weights ``weight`` (k,) and the scalar ``bias``,
    differentiable in all three."""
    size = min(max(weight.shape[0], BAND_BLOCK), x.shape[1])
    return block_banded_product(*toeplitz_blocks(weight, size), x, size) + bias
