"""Backend choice for the ops: Triton kernels on CUDA tensors, compiled time loops on CPU tensors,
else PyTorch (docs/kernels.md, "Dispatch").

Each op (``lra_snn.ops.<name>``) asks ``select_backend`` once per call which path to run.
Triton is chosen on CUDA tensors when triton imports and the op's kernel supports the dtype and
shape; on CPU tensors only when the Triton interpreter is on (``TRITON_INTERPRET=1``, set before
triton is imported), and then only when asked for explicitly. An op with a compiled CPU path
(``compiled.py``: a numba time loop, forward and backward) gets it on CPU tensors of float32 or
float64 when numba imports. ``explain`` and ``explain_compiled`` return the reason a path was not
used (None when it was usable); the reason is also logged once at INFO, and a forced backend that
cannot run raises it. ``allocate`` creates every kernel output buffer, so tests can poison them
with NaN.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Iterable

import torch
from torch import Tensor

BACKENDS = ("torch", "triton", "compiled")
SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
COMPILED_DTYPES = (torch.float32, torch.float64)  # the compiled loops run in the input's own dtype

logger = logging.getLogger(__name__)


class TritonUnavailable(ValueError):
    """``backend="triton"`` was forced where the kernel cannot run; the message says why."""


class CompiledUnavailable(ValueError):
    """``backend="compiled"`` was forced where the compiled loop cannot run; the message says why."""


def interpreter_on() -> bool:
    """Whether the Triton interpreter is requested (kernels then run on CPU tensors, slowly)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@functools.lru_cache(maxsize=1)
def triton_import_error() -> str | None:
    """None when ``import triton`` works, else the reason it does not."""
    try:
        importlib.import_module("triton")
    except ImportError as err:
        return f"triton is not importable ({err}); install the 'gpu' extra (pip install -e '.[gpu]')"
    return None


def explain(primitive: str, tensors: Iterable[Tensor], unsupported: str | None = None) -> str | None:
    """Why the Triton kernel of the op ``primitive`` cannot run on ``tensors``, or None when it can.

    ``unsupported`` is the op's own reason (a shape or option its kernel does not cover).
    """
    for tensor in tensors:  # checked first: CPU-only runs never pay for importing triton
        if tensor.device.type != "cuda" and not interpreter_on():
            return (
                f"{primitive}: tensors are on {tensor.device.type}; the Triton kernel runs on CUDA tensors "
                "(or on CPU under TRITON_INTERPRET=1, set before triton is imported)"
            )
        if tensor.dtype not in SUPPORTED_DTYPES:
            return f"{primitive}: dtype {tensor.dtype} is not supported by the Triton kernel ({SUPPORTED_DTYPES})"
    reason = triton_import_error()
    if reason is not None:
        return reason
    if unsupported is not None:
        return f"{primitive}: {unsupported}"
    return None


@functools.lru_cache(maxsize=1)
def numba_import_error() -> str | None:
    """None when ``import numba`` works, else the reason it does not."""
    try:
        importlib.import_module("numba")
    except ImportError as err:
        return f"numba is not importable ({err}); install it (pip install numba)"
    return None


NO_COMPILED_PATH = "the op has no compiled CPU path"


def explain_compiled(
    primitive: str, tensors: Iterable[Tensor], unsupported: str | None = NO_COMPILED_PATH
) -> str | None:
    """Why the compiled CPU loop of ``primitive`` cannot run on ``tensors``, or None when it can.

    ``unsupported`` is the op's own reason; ops without a compiled path leave the default.
    """
    if unsupported is not None:
        return f"{primitive}: {unsupported}"
    for tensor in tensors:
        if tensor.device.type != "cpu":
            return f"{primitive}: tensors are on {tensor.device.type}; the compiled loop runs on CPU tensors"
        if tensor.dtype not in COMPILED_DTYPES:
            return f"{primitive}: dtype {tensor.dtype} is not supported by the compiled loop ({COMPILED_DTYPES})"
    return numba_import_error()


def select_backend(
    primitive: str,
    tensors: Iterable[Tensor],
    backend: str | None = None,
    unsupported: str | None = None,
    compiled_unsupported: str | None = NO_COMPILED_PATH,
) -> str:
    """ "torch", "triton" or "compiled" for ``primitive`` on ``tensors``.

    ``backend=None`` picks Triton on CUDA tensors when ``explain`` finds no obstacle (it never
    picks the interpreter by itself), else the compiled loop when ``explain_compiled`` finds none
    (``compiled_unsupported``: the op's reason it cannot, None when its compiled path covers the
    call; the default says the op has none), else PyTorch. "torch" forces PyTorch; "triton" and
    "compiled" force their path and raise ``TritonUnavailable`` or ``CompiledUnavailable`` (both
    ValueErrors) with the reason when it cannot run.
    """
    if backend not in (None, *BACKENDS):
        raise ValueError(f"{primitive}: unknown backend {backend!r}; choose one of {BACKENDS} or None (automatic)")
    if backend == "torch":
        return "torch"
    tensors = list(tensors)
    if backend == "compiled":
        reason = explain_compiled(primitive, tensors, compiled_unsupported)
        if reason is not None:
            raise CompiledUnavailable(f"backend='compiled' was forced but cannot run: {reason}")
        return "compiled"
    reason = explain(primitive, tensors, unsupported)
    if backend == "triton":
        if reason is not None:
            raise TritonUnavailable(f"backend='triton' was forced but cannot run: {reason}")
        return "triton"
    if reason is None and all(t.device.type == "cuda" for t in tensors):
        return "triton"
    compiled_reason = explain_compiled(primitive, tensors, compiled_unsupported)
    if compiled_reason is None:
        return "compiled"
    log_once(reason or f"{primitive}: CPU tensors use PyTorch unless backend='triton' is forced", compiled_reason)
    return "torch"


@functools.cache
def log_once(reason: str, compiled_reason: str) -> None:
    """Log at INFO, once per distinct pair of reasons, that the PyTorch path runs instead of the others."""
    logger.info("using the PyTorch path, not Triton: %s; not compiled: %s", reason, compiled_reason)


def allocate(shape: tuple[int, ...] | torch.Size, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """An uninitialised output buffer on ``like``'s device (every kernel writes all of it)."""
    return torch.empty(shape, device=like.device, dtype=like.dtype if dtype is None else dtype)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The arithmetic dtype of a kernel: float64 stays, everything else runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32
