"""Host loops compiled by numba on first use (once per argument types, cached on disk), so no C
compiler is needed on the user's machine: the compiled CPU paths of the ops (each op's
``compiled.py``), the threshold scan's offsets and the refractory solver's time loop. Where numba is
not installed the callers run their uncompiled fallback.

``compile_parallel_loop`` compiles a loop whose outer ``numba.prange`` splits independent rows
(batch x channels) across threads; ``run_parallel`` runs it on as many threads as torch is given
(``torch.get_num_threads``), so ``torch_threads`` sets both. The disk cache lives in a folder named by
the ops' sources (``cache_dir``).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

OPS_DIR = Path(__file__).resolve().parent


@cache
def cache_dir(sources: Path = OPS_DIR) -> Path:
    """Where the compiled loops are cached: ``<XDG cache>/lra_snn/numba/<digest>``, the digest (16 hex
    digits) of every Python file under ``sources`` (relative names and bytes). Numba keys a cached function
    by its own source file only, so a loop compiled against an earlier version of a function it calls (a
    surrogate slope in another module) would be reused; a folder per version of the ops cannot be stale."""
    digest = hashlib.sha256()
    for path in sorted(sources.rglob("*.py")):
        digest.update(path.relative_to(sources).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "lra_snn" / "numba" / digest.hexdigest()[:16]


def _numba() -> Any:
    """numba, its disk cache under ``cache_dir()`` unless the user chose one (``NUMBA_CACHE_DIR``); or None."""
    try:
        numba: Any = importlib.import_module("numba")
    except ImportError:
        return None
    if not numba.config.CACHE_DIR:
        numba.config.CACHE_DIR = str(cache_dir())
    return numba


def host_function(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """A decorator for the scalar functions the compiled loops call: ``numba.njit(nogil=True, cache=True,
    **options)``, its disk cache under ``cache_dir()``. Its modules are imported only where numba is."""
    numba = _numba()
    if numba is None:
        raise ImportError("numba is not installed (pip install numba); the compiled loops need it")
    decorator: Callable[[Callable[..., Any]], Any] = numba.njit(nogil=True, cache=True, **options)
    return decorator


def compile_host_loop(loop: Callable[..., None]) -> Callable[..., None] | None:
    """``loop`` compiled by ``numba.njit`` (releasing the GIL, cached on disk), or None without numba."""
    numba = _numba()
    if numba is None:
        return None
    compiled: Any = numba.njit(nogil=True, cache=True)(loop)
    return compiled


def compile_parallel_loop(loop: Callable[..., None], **options: Any) -> Callable[..., None] | None:
    """``loop`` compiled by ``numba.njit(parallel=True, **options)`` (its ``numba.prange`` loops split
    across threads; releasing the GIL, cached on disk), or None without numba."""
    numba = _numba()
    if numba is None:
        return None
    compiled: Any = numba.njit(nogil=True, cache=True, parallel=True, **options)(loop)
    return compiled


def run_parallel(compiled: Callable[..., None], *args: Any) -> None:
    """Call ``compiled`` (from ``compile_parallel_loop``) on ``torch.get_num_threads()`` threads
    (at most numba's own limit)."""
    import numba
    import torch

    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    compiled(*args)
