"""LightningModules: a task owns the head, loss, metrics and optimizer around a zoo encoder."""
