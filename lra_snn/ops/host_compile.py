"""Host loops compiled by numba on first use (once per argument types, cached on disk), so no C
compiler is needed on the user's machine: the compiled CPU paths of the ops (each op's
``compiled.py``), the threshold scan's offsets and the refractory solver's time loop. Where numba is
not installed the callers run their uncompiled fallback.

``compile_parallel_loop`` compiles a loop whose outer ``numba.prange`` splits independent rows
(batch x channels) across threads; ``run_parallel`` runs it on as many threads as torch is given
(``torch.get_num_threads``), so ``torch_threads`` sets both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def compile_host_loop(loop: Callable[..., None]) -> Callable[..., None] | None:
    """``loop`` compiled by ``numba.njit`` (releasing the GIL, cached on disk), or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    compiled: Any = numba.njit(nogil=True, cache=True)(loop)
    return compiled


def compile_parallel_loop(loop: Callable[..., None]) -> Callable[..., None] | None:
    """``loop`` compiled by ``numba.njit(parallel=True)`` (its ``numba.prange`` loops split across
    threads; releasing the GIL, cached on disk), or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    compiled: Any = numba.njit(nogil=True, cache=True, parallel=True)(loop)
    return compiled


def run_parallel(compiled: Callable[..., None], *args: Any) -> None:
    """Call ``compiled`` (from ``compile_parallel_loop``) on ``torch.get_num_threads()`` threads
    (at most numba's own limit)."""
    import numba
    import torch

    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    compiled(*args)
