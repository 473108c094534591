"""The hard reset's offsets by one loop over time, without autograd (SpikingSSMs, arXiv 2408.14909;
docs/neurons.md, section 8).

With ``u'`` the reset-free potential, the potential before the reset is ``u_t = u'_t - b_t`` with
``b_1 = 0`` and ``b_{t+1} = decay * (u'_t if (u'_t - b_t) - V_th >= 0 else b_t)``: a spike makes the
offset the whole reset-free potential, so the potential after it is 0. On float32/float64 CPU
tensors the loop is compiled by numba on first use (``compile_host_loop``; once per dtype, cached on
disk), walking each batch row in (B, L, D) order with the channels innermost, branch-free so that the
compiler vectorises over channels; elsewhere (CUDA, other dtypes, no numba) it is a loop of torch
operations over time. Both compute in the input's dtype, the same operations in the same order: the
offsets are bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.host_compile import compile_host_loop

_COMPILED_DTYPES = (torch.float32, torch.float64)


def _offsets_loop(reset_free: np.ndarray, offset: np.ndarray, constants: np.ndarray) -> None:
    """Fill ``offset`` (B, L, D) from ``reset_free`` (B, L, D); ``constants`` = (V_th, decay), one dtype."""
    batch, length, channels = reset_free.shape
    v_th, decay = constants[0], constants[1]
    for b in range(batch):
        for d in range(channels):
            offset[b, 0, d] = 0
        for t in range(length - 1):
            for d in range(channels):
                value, previous = reset_free[b, t, d], offset[b, t, d]
                offset[b, t + 1, d] = decay * (value if (value - previous) - v_th >= 0 else previous)


@cache
def offsets_kernel() -> Callable[..., None] | None:
    """The numba-compiled ``_offsets_loop`` (``compile_host_loop``), or None without numba."""
    return compile_host_loop(_offsets_loop)


def _offsets_torch(reset_free: Tensor, v_th: Tensor, decay: Tensor) -> Tensor:
    """The same loop in torch operations, one step at a time."""
    offset = torch.empty_like(reset_free)
    offset[:, 0] = 0
    for t in range(reset_free.shape[1] - 1):
        value, previous = reset_free[:, t], offset[:, t]
        torch.mul(torch.where((value - previous) - v_th >= 0, value, previous), decay, out=offset[:, t + 1])
    return offset


@torch.no_grad()
def host_offsets(reset_free: Tensor, v_th: Tensor, decay: Tensor) -> Tensor:
    """Offsets ``b`` (B, L, D) of the reset-free potential ``reset_free`` (B, L, D); ``v_th`` and
    ``decay``: 0-dim tensors of its dtype. The compiled loop where it can run, else the torch loop."""
    kernel = offsets_kernel() if reset_free.device.type == "cpu" and reset_free.dtype in _COMPILED_DTYPES else None
    if kernel is None:
        return _offsets_torch(reset_free, v_th, decay)
    reset_free = reset_free.contiguous()
    offset = torch.empty_like(reset_free)
    kernel(reset_free.numpy(), offset.numpy(), torch.stack([v_th, decay]).numpy())
    return offset
