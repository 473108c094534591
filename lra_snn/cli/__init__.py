"""Command-line tools: train, reproduce, leaderboard, plots, bench, kernel parity.

Each runs as ``python -m lra_snn.cli.<name>``.
"""
