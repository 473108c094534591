"""The sweeper of ``lra-train -m`` as a Hydra plugin: Hydra instantiates plugins only from the
``hydra_plugins`` package, and imports every module there when it starts, so this one stays light and
leaves the sweep to ``lra_snn.training.sweeper.sweep_cells`` (imported once a sweep runs)."""

from __future__ import annotations

from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper


class CellSweeper(BasicSweeper):
    """Hydra's basic sweeper without the cells completed before, ending with a summary table."""

    def sweep(self, arguments: list[str]) -> Any:
        from lra_snn.training.sweeper import sweep_cells

        return sweep_cells(self, arguments)
