"""Config choices that need an optional extra of the package, and the one-line hint when it is missing.

``lra-train logger=wandb`` without wandb, or ``-m hydra/launcher=parallel`` without Hydra's joblib launcher,
would otherwise fail inside Hydra or Lightning with an import error that does not say how to install it.
``missing_extras`` names each such choice on the command line with the ``pip install`` that provides it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence

# (config group, option) -> (the module it imports, the extra of pyproject.toml that installs it)
NEEDS: dict[tuple[str, str], tuple[str, str]] = {
    ("logger", "wandb"): ("wandb", "wandb"),
    ("hydra/launcher", "parallel"): ("hydra_plugins.hydra_joblib_launcher", "launchers"),
    ("hydra/launcher", "joblib"): ("hydra_plugins.hydra_joblib_launcher", "launchers"),
    ("hydra/launcher", "slurm"): ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    ("hydra/launcher", "submitit_slurm"): ("hydra_plugins.hydra_submitit_launcher", "slurm"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def missing_extras(overrides: Sequence[str], installed: Callable[[str], bool] = _installed) -> list[str]:
    """One line per ``group=option`` override (lists too: ``logger=[csv,wandb]``) whose option needs a
    module that is not installed, naming the extra that installs it."""
    lines = []
    for override in overrides:
        group, sep, value = override.lstrip("+~").partition("=")
        if not sep:
            continue
        for option in value.strip("[]").split(","):
            need = NEEDS.get((group, option.strip()))
            if need is not None and not installed(need[0]):
                lines.append(f"{group}={option.strip()} needs {need[0]}: pip install 'lra-snn[{need[1]}]'")
    return lines
