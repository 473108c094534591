"""Side-by-side timing shared by the peer benchmarks (``s4d_peer.py``, ``peers.py``).

Every contender of a comparison runs in the same process, after warm-up, in interleaved repeats whose
order alternates (A B, B A, A B, ...), so load from other processes and cache or allocator state
affect them alike; the report gives each one's median with quartiles and range (the single-call
timer and the statistics are those of ``lra_snn.cli.bench``), and the ratio of the medians.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lra_snn.cli.bench import allocator_settings, runtime, spread, time_once

__all__ = ["environment", "interleaved", "ms", "spread", "time_once"]


def interleaved(
    calls: dict[str, Callable[[], None]], repeats: int, warmup: int, device: torch.device
) -> dict[str, dict]:
    """``{name: {"times_s": [...], median_s, q1_s, q3_s, min_s, max_s}}`` of every call, timed in
    ``repeats`` rounds after ``warmup`` untimed calls each; round r runs the calls in order when r is
    even and reversed when odd."""
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            times[name].append(time_once(calls[name], device))
    return {name: {"times_s": values} | spread(values) for name, values in times.items()}


def ms(timing: dict) -> str:
    """A timing as ``median [q1, q3]`` in milliseconds."""
    return f"{timing['median_s'] * 1e3:.3g} [{timing['q1_s'] * 1e3:.3g}, {timing['q3_s'] * 1e3:.3g}]"


def environment(device: torch.device) -> dict:
    """Device, library versions, threads and malloc settings, recorded with every benchmark file."""
    return {**runtime(device), "allocator": allocator_settings()}
