"""Shared fixtures: composing the Hydra config into temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from lra_snn import config

# The kernel tests run Triton's interpreter on CPU-only machines. It must be switched on before
# anything imports triton (Lightning may, while other test modules are collected), so here, first.
# The dispatch never picks the interpreter by itself: other tests keep the PyTorch paths.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Small tensors: one thread is faster and immune to oversubscription on a busy 2-core machine.
torch.set_num_threads(1)


def isolated_overrides(tmp: Path) -> list[str]:
    """Overrides that send data, outputs and results into ``tmp`` and silence the progress bar."""
    return [
        f"paths.data_dir={tmp}/data",
        f"paths.output_dir={tmp}/outputs",
        f"paths.results_dir={tmp}/results",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]


@pytest.fixture
def train_overrides(tmp_path) -> list[str]:
    """The isolating overrides for this test's tmp_path (for command-line runs)."""
    return isolated_overrides(tmp_path)


@pytest.fixture
def compose_train(tmp_path):
    """compose_train(*overrides) -> the resolved-on-access train config, isolated under tmp_path."""

    def _compose(*overrides: str) -> DictConfig:
        return config.compose_train([*isolated_overrides(tmp_path), *overrides])

    return _compose
