"""Shared fixtures of the data tests: the tiny ListOps profile and the location of the real data."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

# CI-sized ListOps: a few hundred short trees, generated in well under a second.
TINY_LISTOPS = {
    "n_train": 120,
    "n_val": 30,
    "n_test": 30,
    "min_length": 4,
    "max_length": 40,
    "max_depth": 3,
    "max_args": 4,
    "generator_seed": 7,
}


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the repository; skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (only present on the project's machines)")
    return SHARED_DATA


@pytest.fixture
def tiny_listops(tmp_path: Path):
    """Factory of ListOps DataModules on the tiny generated profile under ``tmp_path/data``."""
    from lra_snn.data.listops_module import ListOpsDataModule

    def build(**overrides):
        settings = {**TINY_LISTOPS, "batch_size": 16, **overrides}
        return ListOpsDataModule(data_dir=tmp_path / "data", source="generate", **settings)

    return build
