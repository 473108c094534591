"""Hints for a mistyped override key: the config keys closest to it.

Hydra refuses ``model.encoder.dmodel=3`` ("Could not override ... Key 'dmodel' is not in struct")
without saying what the key should be. ``unknown_key_hints`` composes the config that the command's
group choices select (the first value of a sweep) and, for every ``key=value`` override whose key
is absent, names the closest existing keys and the keys beside it. Only called after a failure.
"""

from __future__ import annotations

import difflib

from omegaconf import DictConfig, OmegaConf

from lra_snn.config import CONF_DIR, compose_train

_ABSENT = object()


def config_groups() -> set[str]:
    """Config group names under ``conf/`` (``model``, ``model/neuron``, ...)."""
    return {str(path.relative_to(CONF_DIR)) for path in CONF_DIR.rglob("*") if path.is_dir()}


def key_paths(node: object, prefix: str = "") -> list[str]:
    """Every dotted key path of a (plain container) config, nodes and leaves."""
    paths = []
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}{key}"
            paths += [path, *key_paths(value, f"{path}.")]
    return paths


def _split(args: list[str]) -> tuple[list[str], list[str]]:
    """(group choices to compose with, value keys to check) from command-line overrides."""
    groups, keys = [], []
    known_groups = config_groups()
    for arg in args:
        key, sep, value = arg.partition("=")
        if arg.startswith("-") or not sep or key.startswith(("+", "~", "hydra")):
            continue
        if key in known_groups:
            groups.append(f"{key}={value.split(',')[0]}")  # a sweep: its first choice
        else:
            keys.append(key)
    return groups, keys


def unknown_key_hints(args: list[str]) -> list[str]:
    """One line per override key that is not in the composed config, naming the closest keys."""
    groups, keys = _split(args)
    if not keys:
        return []
    try:
        cfg: DictConfig = compose_train(groups)
    except Exception:  # a bad group choice: Hydra's own message already lists the options
        return []
    paths = key_paths(OmegaConf.to_container(cfg, resolve=False))
    hints = []
    for key in keys:
        if OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False) is not _ABSENT:
            continue
        parent = key.rpartition(".")[0]
        siblings = sorted(p.rpartition(".")[2] for p in paths if p.rpartition(".")[0] == parent)
        same_depth = [p for p in paths if p.count(".") == key.count(".")]
        close = difflib.get_close_matches(key, same_depth, n=2, cutoff=0.6)
        hint = f"no config key '{key}'"
        if close:
            hint += "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        if siblings:
            hint += f" Keys under '{parent or '(top level)'}': {', '.join(siblings)}."
        hints.append(hint + " (A new key needs a leading +.)")
    return hints
