"""The options of a config group, as ``lra-train --help`` lists them (``${group_choices:<group>}``).

``model`` lists the zoo (``lra_snn.config.zoo.models``: the model configs and the zoo models made for new
neurons); every other group lists the config files under ``conf/<group>/``. Nothing here imports torch.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from lra_snn.config.locations import CONF_DIR
from lra_snn.config.zoo import models

WIDTH = 100  # the help text's line width
INDENT = 18  # where the help text's option lists start (conf/hydra/help/lra.yaml)


def group_options(group: str, conf_dir: Path = CONF_DIR) -> tuple[str, ...]:
    """The options of config group ``group`` (``model``, ``model/neuron``, ``hydra/launcher``, ...), sorted;
    an unknown group raises KeyError naming the groups there are."""
    if group == "model":
        return models(conf_dir)
    folder = conf_dir / group
    if not folder.is_dir():
        known = sorted(str(p.relative_to(conf_dir)) for p in conf_dir.rglob("*") if p.is_dir())
        raise KeyError(f"no config group {group!r} under {conf_dir}; the groups are {', '.join(known)}")
    return tuple(sorted(path.stem for path in folder.glob("*.yaml")))


def group_choices(group: str, indent: int = INDENT, conf_dir: Path = CONF_DIR) -> str:
    """``group``'s options as one comma-separated paragraph, wrapped at ``WIDTH`` columns (never inside an
    option name) and indented by ``indent`` spaces after its first line (the help template indents that
    line itself)."""
    lines = textwrap.wrap(", ".join(group_options(group, conf_dir)), WIDTH - indent, break_on_hyphens=False)
    return ("\n" + " " * indent).join(lines)
