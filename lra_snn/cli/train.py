"""Train and test one experiment cell: ``python -m lra_snn.train [overrides]`` (Hydra), or a sweep with ``-m``.

The command line is parsed here; the cell's lifecycle (validate, lock, resume, train, evaluate, record)
is ``lra_snn.training.cell.run``. Nothing that imports torch or Lightning is loaded before Hydra has parsed
the command line and a run starts, so ``--help``, ``--cfg``, ``--info``, shell completion and a refused
override answer in about the time a bare Hydra application takes.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lra_snn.config import CONF_DIR, register_with_hydra
from lra_snn.config.extras import missing_extras
from lra_snn.config.locations import inside_shipped_runs, shipped_runs_refusal
from lra_snn.config.override_hints import unknown_key_hints
from lra_snn.training.log_context import cell_label, set_cell_label
from lra_snn.training.names import UnsafeNameError, check_overrides

log = logging.getLogger(__name__)
register_with_hydra()
HYDRA_RUN_FILES = {".hydra", "train.log"}  # what Hydra writes into a single run's folder before the run starts
HYDRA_FOLDER_OVERRIDE = re.compile(r"^\+{0,2}(?P<key>hydra\.(?:run|sweep)\.dir)=(?P<value>.*)$")


def shipped_runs_overrides(overrides: list[str]) -> list[str]:
    """The refusals of Hydra's own folders (``hydra.run.dir``, ``hydra.sweep.dir``) given on the command line
    inside the shipped runs: Hydra creates them before any run starts, so they are checked here. A value with
    an interpolation is left to the run's validation, which checks the ``paths`` it is built from."""
    refusals = []
    for override in overrides:
        match = HYDRA_FOLDER_OVERRIDE.match(override)
        if match and "${" not in match["value"] and inside_shipped_runs(match["value"].strip("'\"")):
            refusals.append(shipped_runs_refusal(match["key"], match["value"]))
    return refusals


def discard_refused_run_folder(run_dir: Path, stop_at: Path) -> None:
    """Remove the folder Hydra made for a single run that was refused before it started: ``run_dir``
    when it holds only Hydra's own files (a folder with anything else is left as it is), then each
    parent that this leaves empty, up to (not including) ``stop_at``."""
    if not run_dir.is_dir() or {entry.name for entry in run_dir.iterdir()} - HYDRA_RUN_FILES:
        return
    shutil.rmtree(run_dir)
    folder = run_dir.parent
    while folder != stop_at and stop_at in folder.parents and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the monitored metric (for sweepers). In a multirun a failed cell
    is recorded and logged, and the sweep goes on with the next cell; a single run exits non-zero (a
    config that validation refuses, with no folder left behind).
    An interrupted cell ends the process (a sweep too) with exit status 128 + signal number."""
    from lra_snn.training.cell import CellRefused, RunFailed, RunInterrupted, run  # torch: only once a run starts
    from lra_snn.training.progress import quiet_libraries
    from lra_snn.training.validate import ConfigError

    set_cell_label(cell_label(cfg))
    quiet_libraries()
    single_run = HydraConfig.get().mode != RunMode.MULTIRUN
    try:
        record = run(cfg)
    except ConfigError:  # refused before anything ran: a single run leaves no folder behind
        if single_run:
            discard_refused_run_folder(Path(HydraConfig.get().runtime.output_dir), Path(cfg.paths.output_dir))
        raise
    except RunInterrupted as stop:  # a sweep stops too: the scheduler or the user asked for it
        log.error("%s", stop)
        raise SystemExit(128 + stop.signum) from None
    except (RunFailed, CellRefused) as failure:
        if single_run:
            raise
        log.error("%s; the sweep goes on with the next cell", failure)
        return None
    return (record.get("metrics") or {}).get(cfg.monitor.metric)


def cli() -> None:
    """Command-line entry (``python -m lra_snn.train``, ``lra-train``): the names on the command line
    checked, Hydra's folders refused inside the shipped runs, a choice whose optional extra is not installed
    named with its ``pip install``, ``main``, and
    when Hydra refuses the command, a hint naming the config keys closest to any unknown override key."""
    try:
        check_overrides(sys.argv[1:])
    except UnsafeNameError as error:
        print(f"lra-train: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    refused = [*shipped_runs_overrides(sys.argv[1:]), *missing_extras(sys.argv[1:])]
    if refused:
        print("\n".join(f"lra-train: {line}" for line in refused), file=sys.stderr)
        raise SystemExit(2)
    try:
        main()
    except SystemExit as stop:
        if stop.code not in (0, None) and not (isinstance(stop.code, int) and stop.code >= 128):  # not a signal
            for hint in unknown_key_hints(sys.argv[1:]):
                print(hint, file=sys.stderr)
        raise


if __name__ == "__main__":
    cli()
