"""``python -m lra_snn.train [overrides]``: train and test one experiment cell, or a sweep with ``-m``.

The short form of ``python -m lra_snn.cli.train``; see that module.
"""

from lra_snn.cli.train import cli

if __name__ == "__main__":
    cli()
