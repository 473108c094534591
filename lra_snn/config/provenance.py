"""What a recorded config may instantiate, and a digest of everything it instantiates.

``ALLOWED_TARGETS`` is every ``_target_`` the configs under ``conf/`` name, read from them (a new
block, model or callback config allows its target by being there); ``foreign_targets`` finds the
others in a config, so a re-run refuses a result file or checkpoint that names something else before
anything is built. ``instantiated_digest`` is a sha256 over the whole
resolved config except ``paths`` and ``skip_completed``: data, model, task, trainer, callbacks and
logger, the seed and the names. Strings under the config's own path roots are written relative to
them (``${paths.run_dir}/checkpoints``), so the digest does not change when a re-run moves the
folders, and does change when anything else is edited. Unlike the cell hash it covers the sections
that are not part of a cell's identity (callbacks, logger, devices), which are instantiated too.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from lra_snn.config.locations import CONF_DIR


def conf_targets(conf_dir: Path = CONF_DIR) -> frozenset[str]:
    """Every ``_target_`` named by a config file under ``conf_dir``."""
    return frozenset(
        str(target)
        for path in sorted(conf_dir.rglob("*.yaml"))
        for _, target in targets(yaml.safe_load(path.read_text(encoding="utf-8")))
    )


PATH_KEYS = ("root_dir", "data_dir", "results_dir", "output_dir", "run_dir", "result_file")
_NOT_DIGESTED = ("paths", "skip_completed")


def targets(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every ``_target_`` in a plain config (dicts and lists)."""
    if isinstance(config, Mapping):
        for key, value in config.items():
            where = f"{prefix}{key}"
            if key == "_target_":
                yield where, value
            else:
                yield from targets(value, f"{where}.")
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from targets(value, f"{prefix}{index}.")


ALLOWED_TARGETS = conf_targets()


def foreign_targets(config: Any) -> list[tuple[str, Any]]:
    """The ``_target_`` entries of ``config`` that are not in ALLOWED_TARGETS, as (dotted key, target)."""
    return [(key, value) for key, value in targets(config) if value not in ALLOWED_TARGETS]


def foreign_targets_message(config: Any, where: str) -> str | None:
    """The refusal naming ``where`` and each ``_target_`` of ``config`` outside ALLOWED_TARGETS; None if none."""
    foreign = foreign_targets(config)
    if not foreign:
        return None
    listed = "; ".join(f"{key} = {target!r}" for key, target in foreign)
    return (
        f"{where}: refusing to instantiate targets that no config under conf/ uses: {listed} "
        "(allowed: lra_snn.config.provenance.ALLOWED_TARGETS)"
    )


def path_roots(config: Mapping[Any, Any]) -> list[tuple[str, str]]:
    """(path, ``${paths.<key>}``) for the config's path roots, longest path first."""
    paths = config.get("paths") or {}
    roots = [(str(paths[key]).rstrip("/"), f"${{paths.{key}}}") for key in PATH_KEYS if isinstance(paths.get(key), str)]
    return sorted(roots, key=lambda root: len(root[0]), reverse=True)


def _relative_to_roots(value: Any, roots: list[tuple[str, str]]) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _relative_to_roots(item, roots) for key, item in value.items()}
    if isinstance(value, list):
        return [_relative_to_roots(item, roots) for item in value]
    if isinstance(value, str):
        for root, symbol in roots:
            if value == root or value.startswith(root + "/"):
                return symbol + value[len(root) :]
    return value


def instantiated_digest(config: Mapping[Any, Any]) -> str:
    """sha256 (hex) of ``config`` (plain, resolved) without paths and skip_completed, path strings made relative."""
    roots = path_roots(config)
    content = {key: _relative_to_roots(value, roots) for key, value in config.items() if key not in _NOT_DIGESTED}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def absolute_paths(config: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, value) of every string in a plain config that is an absolute path."""
    if isinstance(config, Mapping):
        for key, value in config.items():
            yield from absolute_paths(value, f"{prefix}{key}.")
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from absolute_paths(value, f"{prefix}{index}.")
    elif isinstance(config, str) and os.path.isabs(config):
        yield prefix.rstrip("."), config
