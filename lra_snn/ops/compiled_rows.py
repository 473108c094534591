"""The pieces the compiled CPU loops (each op's ``compiled.py`` and the refractory solver's
``sequential.py``) share: how (batch row, channel block) tasks split across threads, the scalar numba
helpers their loops call, and the wrappers that compile a loop on first use and run it on tensors.

Every loop walks time in the (B, L, D) layout with the channels innermost, so the compiler vectorises
over channels; its outer ``numba.prange`` runs over ``batch * ceil(D / width)`` tasks, ``width`` from
``channel_block`` its last argument. The scalar helpers are compiled by ``host_function`` (their disk
cache keyed by the ops' sources, ``lra_snn.ops.host_compile``); this module is imported only where
numba is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lra_snn.ops.host_compile import compile_parallel_loop, host_function, run_parallel

CHANNEL_BLOCK_MIN = 16  # channels per thread at least when rows are split into channel blocks
TOUCH_CHUNK = 128  # steps walked backwards after one forward touch of their rows (``touch_rows``)


def channel_block(batch: int, channels: int) -> int:
    """Channels per parallel task: all of a row when there are as many rows as threads, else blocks
    (at least ``CHANNEL_BLOCK_MIN`` wide) so that every thread gets a task."""
    threads = torch.get_num_threads()
    if batch >= threads:
        return max(channels, 1)
    per_row = -(-threads // max(batch, 1))
    return max(CHANNEL_BLOCK_MIN, -(-channels // per_row))


def parallel_kernel(loop: Callable[..., None], **options: Any) -> Callable[[], Callable[..., None]]:
    """A function returning ``loop`` compiled by ``compile_parallel_loop`` (numba ``options`` such as
    ``fastmath``), compiled on its first call and kept (numba imports wherever a compiled path runs)."""

    @cache
    def kernel() -> Callable[..., None]:
        compiled = compile_parallel_loop(loop, **options)
        assert compiled is not None
        return compiled

    return kernel


def run_rows(kernel: Callable[..., None], arrays: Iterable[Tensor], *options: object, like: Tensor) -> None:
    """Run the compiled loop ``kernel`` (``run_parallel``) on ``arrays`` as numpy arrays, then ``options``,
    then the channel-block width (``channel_block``) of ``like``'s (B, L, D, ...) shape."""
    run_parallel(kernel, *(t.numpy() for t in arrays), *options, channel_block(like.shape[0], like.shape[2]))


@host_function()
def compensated_add(sums: np.ndarray, lost: np.ndarray, i: int, term: float) -> None:
    """``sums[i] += term`` by Kahan's compensated summation (``lost[i]`` holds the rounding carried)."""
    corrected = term - lost[i]
    total = sums[i] + corrected
    lost[i] = (total - sums[i]) - corrected
    sums[i] = total


@host_function()
def copy_row(source: np.ndarray, target: np.ndarray) -> None:
    """``target[:] = source`` for two 1-d arrays of one length, as a loop the compiler vectorises."""
    for i in range(source.shape[0]):
        target[i] = source[i]


@host_function()
def touch_rows(array: np.ndarray, row: int, first: int, end: int, start: int, stop: int, scratch: np.ndarray) -> None:
    """Read one value per 64-byte cache line of ``array[row, first:end, start:stop]`` in forward order, so
    that a walk backwards through those rows finds them in cache (the hardware prefetches rows read
    forward, not backward); ``scratch[0]`` receives their sum (it is overwritten before use), which
    keeps the reads."""
    total = array.dtype.type(0)
    for t in range(first, end):
        for d in range(start, stop, 64 // array.itemsize):
            total += array[row, t, d]
    scratch[0] = total


@host_function()
def clear_rows(array: np.ndarray, row: int, first: int, end: int, start: int, stop: int) -> None:
    """Zero one value per 64-byte cache line of ``array[row, first:end, start:stop]`` in forward order, so
    that the backward walk that then writes every value of those rows finds them in cache."""
    for t in range(first, end):
        for d in range(start, stop, 64 // array.itemsize):
            array[row, t, d] = 0
