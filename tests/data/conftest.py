"""Shared fixtures of the data tests: no network, the tiny ListOps profile, and the location of the real data."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
LOOPBACK = ("127.0.0.1", "::1", "localhost")

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


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No data test reaches the network: the Hub libraries run offline, and a socket may connect to this
    machine only (the download tests serve files from localhost)."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    real_connect = socket.socket.connect

    def connect(self, address):
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise OSError(f"a data test tried to connect to {address}; tests must not reach the network")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the repository; skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (only present on the project's machines)")
    return SHARED_DATA


@pytest.fixture
def tiny_listops(tmp_path: Path):
    """Factory of ListOps DataModules on the tiny generated profile under ``tmp_path/data``."""
    from lra_snn.data.listops.module import ListOpsDataModule

    def build(**overrides):
        settings = {**TINY_LISTOPS, "batch_size": 16, **overrides}
        return ListOpsDataModule(data_dir=tmp_path / "data", source="generate", **settings)

    return build
