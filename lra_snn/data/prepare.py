"""Prepare a task's data without training: ``python -m lra_snn.data.prepare data=<task> profile=<p>``.

Generates, downloads or reads the task's files as its data module does, and fills the cache,
so a later training run starts at once. Uses the same config as training (conf/train.yaml).
"""

from __future__ import annotations

import logging

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from lra_snn.config import register_resolvers

log = logging.getLogger(__name__)
register_resolvers()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    for split in ("train", "val", "test"):
        counts = datamodule.class_counts(split)
        log.info("%s %s: %d examples, majority class rate %.4f", cfg.task_name, split, counts.sum(),
                 counts.max() / counts.sum())


if __name__ == "__main__":
    main()
