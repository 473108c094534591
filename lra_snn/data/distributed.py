"""Exact evaluation under DDP: every validation / test example is seen by exactly one rank.

``torch.utils.data.DistributedSampler`` (which Lightning inserts by default) pads the dataset by
repeating examples until it divides by the world size, so a distributed accuracy would count some
examples twice. ``UnpaddedDistributedSampler`` gives each rank one contiguous shard of the
dataset, with no padding and no dropping; ``EvaluatedExamples`` logs how many examples the ranks
evaluated together, so a run can prove the count equals the split size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import cast

import lightning as L
import torch
from torch.utils.data import Dataset, DistributedSampler


def shard_bounds(n_examples: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of rank ``rank``'s contiguous shard: shards differ in size by at most one."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must lie in [0, world_size), got rank={rank}, world_size={world_size}")
    base, extra = divmod(n_examples, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class UnpaddedDistributedSampler(DistributedSampler):
    """In-order evaluation sampler: rank r reads its own contiguous shard, nothing repeated or left out.

    A subclass of ``DistributedSampler`` so Lightning keeps it instead of inserting its padding one.
    Shards may differ in length by one, which is fine for evaluation (metrics are synced at epoch
    end), never for training (ranks would run different numbers of steps).
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None) -> None:
        super().__init__(cast(Dataset, dataset), num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.start, self.stop = shard_bounds(len(dataset), self.rank, self.num_replicas)
        self.num_samples = self.stop - self.start

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.num_samples


def evaluation_sampler(dataset: Sized) -> UnpaddedDistributedSampler | None:
    """The unpadded sampler when torch.distributed is running, else None (the loader reads in order)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return UnpaddedDistributedSampler(dataset)
    return None


class EvaluatedExamples(L.Callback):
    """Logs ``val/n_examples`` and ``test/n_examples``: labels evaluated, summed over batches and ranks."""

    def __init__(self, label_key: str = "labels") -> None:
        self.label_key = label_key

    def _log_count(self, pl_module: L.LightningModule, split: str, batch: dict) -> None:
        count = torch.tensor(float(len(batch[self.label_key])), device=pl_module.device)
        pl_module.log(
            f"{split}/n_examples", count, reduce_fx="sum", on_step=False, on_epoch=True, sync_dist=True, batch_size=1
        )

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._log_count(pl_module, "val", batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._log_count(pl_module, "test", batch)
