"""Datasets of the benchmark: one folder per task (``source``: where its examples come from,
``module``: its LightningDataModule), stored with Hugging Face ``datasets`` (``store``), and what
the tasks share (``base``, ``tokenizers``, ``collate``, ``views``, ``splits``, ``download``,
``distributed``, ``errors``)."""
