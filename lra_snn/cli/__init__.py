"""Command-line tools: train, reproduce, leaderboard, plots, bench, kernel parity (each ``python -m lra_snn.cli.<name>``)."""
