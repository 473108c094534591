"""The run's resolved config inside every checkpoint, and the encoder rebuilt from it.

A task's weights alone do not say how to build its encoder (layers, block, neuron, sizes). Each
checkpoint a task writes therefore carries, under ``CONFIG_KEY``, the whole composed and resolved
Hydra config of the run (a plain dict) and the encoder's input size (``vocab_size`` or ``d_input``,
as the data module gave it). ``build_encoder`` instantiates ``model.encoder`` of such a config,
after checking that every ``_target_`` in the config is one the project's configs use
(``lra_snn.config.provenance.ALLOWED_TARGETS``): a checkpoint file never names code to run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from lra_snn.config.provenance import foreign_targets_message

CONFIG_KEY = "lra_snn_config"


class StoredConfigError(ValueError):
    """A checkpoint without a usable stored config; the message names the file and the remedy."""


def stored_entry(config: Mapping[str, Any], encoder_inputs: Mapping[str, int]) -> dict[str, Any]:
    """What a checkpoint stores under ``CONFIG_KEY``: the resolved config and the encoder's input size
    (the data module's ``encoder_kwargs()``: ``vocab_size`` or ``d_input``)."""
    return {"config": dict(config), "encoder_inputs": dict(encoder_inputs)}


def read_stored(path: str | Path) -> dict[str, Any]:
    """The ``CONFIG_KEY`` entry of the checkpoint at ``path`` (checked to be complete)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load fails on foreign bytes in many ways (KeyError on some text files)
        raise StoredConfigError(
            f"cannot read checkpoint {path}: not a PyTorch checkpoint, or cut short ({type(error).__name__}); "
            "evaluate the cell's best.ckpt or last.ckpt under outputs/runs/<cell>/checkpoints/"
        ) from None
    entry = checkpoint.get(CONFIG_KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict) or "encoder_inputs" not in entry:
        raise StoredConfigError(
            f"checkpoint {path} carries no run config (written before checkpoints stored it, or not by "
            "lra_snn.training.cell); train the cell again, or pass encoder=<SequenceEncoder> to load_from_checkpoint"
        )
    return entry


def check_allowed(config: Mapping[str, Any], where: str) -> None:
    """StoredConfigError naming ``where`` and each ``_target_`` of ``config`` that no project config uses."""
    refusal = foreign_targets_message(config, where)
    if refusal:
        raise StoredConfigError(refusal)


def build_encoder(entry: Mapping[str, Any], where: str) -> nn.Module:
    """The encoder of a stored entry (``read_stored``), freshly initialised, its targets checked first."""
    config = entry["config"]
    check_allowed(config, where)
    model = config.get("model") or {}
    if "encoder" not in model:
        raise StoredConfigError(f"{where}: the stored config has no model.encoder section")
    return instantiate(OmegaConf.create(model["encoder"]), **entry["encoder_inputs"])
