"""Prepare a task's data without training: ``python -m lra_snn.cli.prepare data=<task> profile=<p>``
(``make data-<task>``).

Downloads the task's canonical source where it has one (the data module's ``download()``:
resumable, verified, atomic), generates the synthetic tasks, and fills the cache, so a later
training run starts at once. Uses the same config as training (conf/train.yaml).
"""

from __future__ import annotations

import logging

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from lra_snn.config import CONF_DIR, register_with_hydra

log = logging.getLogger(__name__)
register_with_hydra()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    datamodule = instantiate(cfg.data)
    if hasattr(datamodule, "download"):
        datamodule.download()
    datamodule.prepare_data()
    datamodule.setup("fit")
    log.info("%s ready: %s", cfg.task_name, datamodule.summary_metrics())


if __name__ == "__main__":
    main()
