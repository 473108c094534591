"""lra-snn: a benchmark suite for spiking state-space models on long sequences (LRA, WikiText-103)."""

__version__ = "0.1.0"
