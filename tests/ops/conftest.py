"""Fixtures of the kernel tests: the Triton interpreter on machines without CUDA, NaN-poisoned
outputs, and a record of the backends the dispatch chose.

``TRITON_INTERPRET=1`` must be set before triton is imported (docs/kernels.md, "Correctness without a
GPU"), so the root ``tests/conftest.py`` sets it on machines without CUDA. Every kernel output buffer
is allocated full of NaN (``dispatch.allocate`` patched) so an element a kernel forgets to write
fails the comparison.
"""

from __future__ import annotations

import pytest
import torch

from lra_snn.ops import dispatch


def nan_buffer(shape, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An output buffer full of NaN (in place of ``dispatch.allocate``'s uninitialised one)."""
    return torch.full(tuple(shape), float("nan"), device=like.device, dtype=like.dtype if dtype is None else dtype)


@pytest.fixture(autouse=True)
def poisoned_outputs(monkeypatch):
    """Kernel outputs start as NaN in every test here."""
    monkeypatch.setattr(dispatch, "allocate", nan_buffer)


@pytest.fixture
def chosen_backends(monkeypatch) -> list[tuple[str, str]]:
    """``(op, backend)`` for every ``dispatch.select_backend`` call of the test, in order."""
    chosen: list[tuple[str, str]] = []
    original = dispatch.select_backend

    def recording(primitive: str, *args, **kwargs) -> str:
        choice = original(primitive, *args, **kwargs)
        chosen.append((primitive, choice))
        return choice

    monkeypatch.setattr(dispatch, "select_backend", recording)
    return chosen


@pytest.fixture
def device() -> torch.device:
    """CUDA when present (kernels compiled for the GPU), else the CPU under the Triton interpreter."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (full-size kernel check); the interpreter tests cover the CPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
