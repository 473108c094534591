"""Train and test one experiment cell: ``python -m lra_snn.train [overrides]`` (Hydra), or a sweep with ``-m``.

The command line is parsed here; the cell's lifecycle (validate, lock, resume, train, evaluate, record)
is ``lra_snn.training.cell.run``.
"""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lra_snn.config import CONF_DIR, register_with_hydra
from lra_snn.config.override_hints import unknown_key_hints
from lra_snn.training.cell import CellRefused, RunFailed, RunInterrupted, run
from lra_snn.training.names import UnsafeNameError, check_overrides
from lra_snn.training.progress import quiet_data_bars

log = logging.getLogger(__name__)
register_with_hydra()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the monitored metric (for sweepers). In a multirun a failed cell
    is recorded and logged, and the sweep goes on with the next cell; a single run exits non-zero.
    An interrupted cell ends the process (a sweep too) with exit status 128 + signal number."""
    quiet_data_bars()
    try:
        record = run(cfg)
    except RunInterrupted as stop:  # a sweep stops too: the scheduler or the user asked for it
        log.error("%s", stop)
        raise SystemExit(128 + stop.signum) from None
    except (RunFailed, CellRefused) as failure:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        log.error("%s; the sweep goes on with the next cell", failure)
        return None
    return (record.get("metrics") or {}).get(cfg.monitor.metric)


def cli() -> None:
    """Command-line entry (``python -m lra_snn.train``, ``lra-train``): the names on the command line
    checked, ``main``, and when Hydra refuses the command, a hint naming the config keys closest to
    any unknown override key."""
    try:
        check_overrides(sys.argv[1:])
    except UnsafeNameError as error:
        print(f"lra-train: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        main()
    except SystemExit as stop:
        if stop.code not in (0, None) and not (isinstance(stop.code, int) and stop.code >= 128):  # not a signal
            for hint in unknown_key_hints(sys.argv[1:]):
                print(hint, file=sys.stderr)
        raise


if __name__ == "__main__":
    cli()
