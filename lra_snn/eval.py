"""``python -m lra_snn.eval ckpt_path=<best.ckpt> [split=test|val] [mode=parallel|stream] [key=value ...]``.

The short form of ``python -m lra_snn.cli.eval``; see that module.
"""

from lra_snn.cli.eval import main

if __name__ == "__main__":
    raise SystemExit(main())
