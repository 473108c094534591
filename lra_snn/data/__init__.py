"""Datasets of the benchmark (data.md): readers for the canonical sources, generators,
tokenised caches and LightningDataModules."""
