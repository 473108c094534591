"""Fetch and unpack the official LRA release (``make data-lra``):
``python -m lra_snn.cli.lra_release [--data-dir DIR]``.

The download, its SHA-256 record and the unpacking are ``lra_snn.data.lra_release.fetch_release``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from lra_snn.config import PROJECT_ROOT
from lra_snn.data.download import ArchiveError, DownloadError
from lra_snn.data.errors import BlockedPathError
from lra_snn.data.lra_release import FOLDERS, fetch_release


def main(argv: Sequence[str] | None = None) -> None:
    """Download (or check) ``<data-dir>/downloads/lra_release.gz`` and unpack the task folders beside it; a
    failed download, a wrong or damaged archive or a blocked path exits 2 with its message (which names the
    files and the way out), without a traceback."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / "data", help="the runs' paths.data_dir")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        release_dir = fetch_release(args.data_dir)
    except (ArchiveError, DownloadError, BlockedPathError) as error:
        print(f"lra-release: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"LRA release ready in {release_dir}: {', '.join(FOLDERS.values())}")


if __name__ == "__main__":
    main()
