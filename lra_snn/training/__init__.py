"""Training plumbing: optimizer groups and schedule, callbacks, checkpoints, sweep progress."""
