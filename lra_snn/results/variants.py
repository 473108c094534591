"""What tells two runs of one model apart: the settings of the experiment cell, and a short label for a variant.

A run's identity is its recorded config restricted to what defines an experiment cell (the sections
``lra_snn.config.cell.cell_content``: the content the hash covers, without the machine-specific keys and
the keys at their neutral value),
flattened to dotted keys. Runs with the same identity pool their seeds even when their cell hashes
differ (a hash computed by another version of the code); a record without a config (schema 1) is
known by its cell hash alone. Within one (profile, model, task) the model's default cell is today's
default config for it (``conf/`` composed with no other override) when the runs differ from that
config only in values; otherwise (runs recorded before a setting existed) the identity with the
most seeds. Every other identity is labelled by the keys in which it differs from the default
(``trainer.precision=bf16-mixed``), so variants are shown side by side, never in place of each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from lra_snn.config.cell import cell_content

MAX_LABEL_KEYS = 3  # a label names at most this many differing keys, then "+N more"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": 1}`` for ``{"a": {"b": 1}}``; lists stay values."""
    if isinstance(tree, Mapping) and tree:
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): tree} if prefix else {}


def identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The cell-defining settings of a recorded config (``lra_snn.config.cell.cell_content``, the content the
    cell hash covers), as dotted keys; empty for an empty config (a record of schema 1)."""
    if not config:
        return {}
    content: dict[str, Any] = {}
    for section, value in cell_content(config).items():
        content.update(flatten(value, f"{section}.") if isinstance(value, dict) else {section: value})
    return content


def identity_key(config: Mapping[str, Any], config_hash: str) -> str:
    """A string equal for runs of one identity: the identity as JSON, or the cell hash when no config was recorded."""
    content = identity(config)
    return json.dumps(content, sort_keys=True, default=str) if content else f"hash:{config_hash}"


def _value(value: Any) -> str:
    return "unset" if value is None else json.dumps(value, default=str).strip('"')


def differing_keys(key: str, base: str) -> list[str]:
    """``key=value`` for each setting of identity ``key`` that differs from identity ``base`` (sorted by key)."""
    if key.startswith("hash:") or base.startswith("hash:"):
        return [] if key == base else [f"config {key.removeprefix('hash:')}"]
    mine, theirs = json.loads(key), json.loads(base)
    names = sorted(name for name in {*mine, *theirs} if mine.get(name, "<absent>") != theirs.get(name, "<absent>"))
    return [f"{name}={_value(mine[name]) if name in mine else 'absent'}" for name in names]


@cache
def default_identity(profile: str, model: str, task: str) -> str | None:
    """The identity of today's default cell for ``model`` on ``task`` at ``profile`` (the configs under
    ``conf/`` composed with no other override), or None when they do not compose (a renamed model).
    Composed once per process (a board of your runs and the shipped runs asks for most cells twice)."""
    from omegaconf import OmegaConf

    from lra_snn.config import compose_train

    try:
        composed = compose_train([f"model={model}", f"data={task}", f"profile={profile}"])
        config = OmegaConf.to_container(composed, resolve=True)
    except Exception:  # a model or task name that is not a config option, or a config that no longer resolves
        return None
    return identity_key({str(k): v for k, v in config.items()}, "") if isinstance(config, dict) else None


def changes_only(key: str, base: str) -> bool:
    """True when ``key`` and ``base`` have the same settings and differ only in values (no key added or absent)."""
    if key.startswith("hash:") or base.startswith("hash:"):
        return False
    return set(json.loads(key)) == set(json.loads(base))


def variant_label(key: str, base: str) -> str:
    """The short label of identity ``key`` beside the default ``base``: "" for the default itself."""
    keys = differing_keys(key, base)
    shown = ", ".join(keys[:MAX_LABEL_KEYS])
    return shown + (f" +{len(keys) - MAX_LABEL_KEYS} more" if len(keys) > MAX_LABEL_KEYS else "")
