"""EpochSeededSampler (lra_snn/data/base.py): an order fixed by (seed, epoch), and resuming after part of it."""

from __future__ import annotations

import pytest

from lra_snn.data.base import EpochSeededSampler


def test_order_depends_on_seed_and_epoch_only():
    first, again = EpochSeededSampler(50, seed=3), EpochSeededSampler(50, seed=3)
    assert list(first) == list(again) and sorted(first) == list(range(50))
    first.set_epoch(1)
    assert list(first) != list(again)
    assert list(EpochSeededSampler(50, seed=4)) != list(again)


def test_resume_after_leaves_out_the_trained_prefix_once():
    sampler = EpochSeededSampler(50, seed=3)
    sampler.set_epoch(2)
    whole = list(sampler)
    sampler.resume_after(20)
    assert list(sampler) == whole[20:] and len(sampler) == 50  # the epoch keeps its length for the loop counters
    assert list(sampler) == whole  # the next pass is whole again
    with pytest.raises(ValueError, match="cannot resume after 51 of 50"):
        sampler.resume_after(51)


def test_a_seed_of_64_bits_is_accepted():
    # an unseeded process's torch.initial_seed() may take all 64 bits
    assert sorted(EpochSeededSampler(7, seed=2**64 - 1)) == list(range(7))
