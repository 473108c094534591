"""Fetch and unpack the official LRA release (``make data-lra``):
``python -m lra_snn.cli.lra_release [--data-dir DIR]``.

The download, its SHA-256 record and the unpacking are ``lra_snn.data.lra_release.fetch_release``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from lra_snn.config import PROJECT_ROOT
from lra_snn.data.lra_release import FOLDERS, fetch_release


def main(argv: Sequence[str] | None = None) -> None:
    """Download (or check) ``<data-dir>/downloads/lra_release.gz`` and unpack the task folders beside it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / "data", help="the runs' paths.data_dir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    release_dir = fetch_release(args.data_dir)
    print(f"LRA release ready in {release_dir}: {', '.join(FOLDERS.values())}")


if __name__ == "__main__":
    main()
