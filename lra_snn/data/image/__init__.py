"""LRA Image: CIFAR-10 from the release batches or the Hub (source), in gray levels by the data module (module)."""
