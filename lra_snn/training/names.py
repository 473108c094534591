"""Names that become folder names of a run, checked to stay inside their folders.

``paths.cell`` (``<profile_name>/<task_name>/<model.name>/<config hash>/seed_<seed>``) names the
run's output folder under ``<paths.output_dir>/runs`` and its result folder under
``<paths.results_dir>/runs``. Each name is one folder name of letters, digits, ``.``, ``_`` and
``-`` that starts with a letter or digit (so never ``..`` and never a ``/``), the seed an integer,
and the two folders must lie inside ``output_dir`` and ``results_dir``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

NAME_KEYS = ("profile_name", "task_name", "model.name")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
ALLOWED = "letters, digits, '.', '_' and '-', starting with a letter or digit"


class UnsafeNameError(ValueError):
    """A name that would put a run's files outside its folders; the message names the key."""


def check_name(key: str, value: object) -> None:
    """Raise UnsafeNameError unless ``value`` (of config key ``key``) is one safe folder name (an integer seed)."""
    if key == "seed":
        if isinstance(value, bool) or (not isinstance(value, int) and not re.fullmatch(r"-?[0-9]+", str(value))):
            raise UnsafeNameError(f"seed={value!r} becomes the folder name seed_<seed>; use an integer")
        return
    if not _NAME.fullmatch(str(value)):
        raise UnsafeNameError(f"{key}={value!r} becomes a folder name of the run's outputs and results; use {ALLOWED}")


def _normal(path: str) -> Path:
    return Path(os.path.normpath(os.path.abspath(path)))


def check_cell_paths(cfg: DictConfig) -> None:
    """Check the names of ``cfg`` and that its run and result folders stay inside output_dir and results_dir."""
    for key in (*NAME_KEYS, "seed"):
        check_name(key, OmegaConf.select(cfg, key))
    cell = str(cfg.paths.cell)
    for part in cell.split("/"):
        if not _NAME.fullmatch(part):
            raise UnsafeNameError(f"paths.cell={cell!r} has the folder name {part!r}; each part must use {ALLOWED}")
    for key, inside in (("run_dir", "output_dir"), ("result_file", "results_dir")):
        path, root = _normal(str(cfg.paths[key])), _normal(str(cfg.paths[inside]))
        if not path.is_relative_to(root):
            raise UnsafeNameError(
                f"paths.{key}={cfg.paths[key]!r} is outside paths.{inside}={cfg.paths[inside]!r}; keep it under {root}"
            )


def check_overrides(overrides: list[str]) -> None:
    """Check the name keys set on a command line (each value of a comma-separated sweep) before anything runs."""
    for override in overrides:
        key, sep, value = override.lstrip("+").partition("=")
        if not sep or key not in (*NAME_KEYS, "seed") or "(" in value:
            continue  # sweep functions (range(...), choice(...)) are checked per cell by check_cell_paths
        for item in value.split(","):
            check_name(key, item)
