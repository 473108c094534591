"""The package's floors (``[tool.importlinter]`` in pyproject.toml): no import runs back up a floor, and
packages on one floor import none of each other, so no cycle closes between packages.

The contract is checked on the package as it is, and on copies with a planted upward import, a planted
import between packages of one floor and a planted cycle, each of which it must refuse.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lra_snn.config import PROJECT_ROOT

LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
)


def lint(root: Path) -> subprocess.CompletedProcess:
    """import-linter's check of the ``lra_snn`` package under ``root`` against ``root/pyproject.toml``."""
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_floors():
    checked = lint(PROJECT_ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "floors KEPT" in checked.stdout


@pytest.fixture
def package_copy(tmp_path) -> Path:
    """The package's sources and pyproject.toml copied under ``tmp_path`` (found before the installed package)."""
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(PROJECT_ROOT / "lra_snn", tmp_path / "lra_snn", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def plant(root: Path, module: str, line: str) -> None:
    """Append ``line`` to ``module`` (a dotted name) of the copy under ``root``."""
    path = root / Path(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text() + f"\n{line}\n")


# (module of the copy, the line planted in it, the import the report must name)
PLANTED = {
    "upward": ("lra_snn.ops.tiles", "import lra_snn.neurons.lif", "lra_snn.neurons.lif"),
    "upward-two-floors": ("lra_snn.results.board", "from lra_snn.training import cell", "lra_snn.training.cell"),
    "same-floor": ("lra_snn.metrics.perplexity", "import lra_snn.data.splits", "lra_snn.data.splits"),
    "same-floor-bottom": ("lra_snn.config.cell", "import lra_snn.optim.groups", "lra_snn.optim.groups"),
}


@pytest.mark.parametrize(("module", "line", "imported"), PLANTED.values(), ids=PLANTED.keys())
def test_a_planted_import_that_breaks_a_floor_is_refused(package_copy, module, line, imported):
    plant(package_copy, module, line)
    checked = lint(package_copy)
    assert checked.returncode == 1, checked.stdout
    assert "floors BROKEN" in checked.stdout
    assert f"{module} -> {imported}" in checked.stdout


def test_a_planted_cycle_between_packages_is_refused(package_copy):
    # models already imports neurons; neurons importing models closes a cycle
    plant(package_copy, "lra_snn.neurons.base", "import lra_snn.models.s4d")
    checked = lint(package_copy)
    assert checked.returncode == 1, checked.stdout
    assert "lra_snn.neurons.base -> lra_snn.models.s4d" in checked.stdout
