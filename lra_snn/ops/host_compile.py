"""Host loops compiled by numba on first use (once per argument types, cached on disk), so no C
compiler is needed on the user's machine; the CPU paths of the threshold scan and of the refractory
solver's time loop. Where numba is not installed the callers run their uncompiled fallback.
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
