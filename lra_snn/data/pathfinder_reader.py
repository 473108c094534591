"""Reader of the Pathfinder / Path-X release layout (LRA, Tay et al. 2020; data.md "Pathfinder").

``<folder>/<difficulty>/metadata/<batch>.npy`` is a TEXT file (despite its name), one line per
image, space separated: ``imgs/<batch> sample_<n>.png <index> <label> <continuity> <contour_len>
<distractor_len> <paddle_len> <paddle_thickness> <margin> <n_contrasts>``; the image is
``<folder>/<difficulty>/imgs/<batch>/sample_<n>.png`` (grayscale). Policy for damaged data: an empty
or undecodable PNG is skipped and counted (the real release holds one empty PNG), never relabelled;
a malformed metadata line, a metadata line naming a missing image, or an image of the wrong size
is an error naming the metadata file and line, because each means an incomplete or mixed-up copy
of the release that should be fixed rather than trained on.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lra_snn.data.errors import DataFormatError, DataNotFoundError

N_COLUMNS = 11
LABEL_COLUMN = 3
LABEL_TEXTS = ("0", "1")
METADATA_FOLDER = "metadata"
MAKE_TARGETS = {32: "make data-pathfinder", 128: "make data-pathx"}
MAKE_TARGET = "make data-pathfinder (32 px) or make data-pathx (128 px)"
SHOWN_SKIPPED = 5  # paths named in the warning about skipped images
# what PIL raises on a file that is not a decodable image
UNDECODABLE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error)


class SkippedImagesWarning(UserWarning):
    """Some images of a Pathfinder folder were empty or undecodable and were left out."""


@dataclass(frozen=True)
class ImageRecord:
    """One metadata line: the image it names, its label, and where the line is."""

    image: Path
    label: int
    metadata: Path
    line: int


def locate_release(release_dir: str | Path | None, resolution: int) -> Path:
    """The folder holding the difficulty folders: ``release_dir`` itself or ``pathfinder<res>`` below it
    (also inside the release's ``lra_release/`` or ``lra_release/lra_release/`` nesting)."""
    if release_dir is None:
        raise ValueError("source='release' needs data.release_dir=<folder of the LRA release>")
    root = Path(release_dir)
    name = f"pathfinder{resolution}"
    candidates = [root, root / name, root / "lra_release" / name, root / "lra_release" / "lra_release" / name]
    for folder in candidates:
        if folder.is_dir() and any((child / METADATA_FOLDER).is_dir() for child in folder.iterdir()):
            return folder
    raise DataNotFoundError(
        root / name,
        MAKE_TARGETS.get(resolution, MAKE_TARGET),
        detail="looked for <difficulty>/metadata/ folders in " + ", ".join(str(c) for c in candidates)
        + "; unpack the LRA release (lra_release.gz) there, or use source=generate",
    )


def difficulty_dirs(folder: str | Path, difficulty: str | None = None) -> list[Path]:
    """The chosen difficulty folder of ``folder``, or (``difficulty=None``) every one present, by name."""
    folder = Path(folder)
    if difficulty is not None:
        chosen = folder / difficulty
        if not (chosen / METADATA_FOLDER).is_dir():
            present = [d.name for d in difficulty_dirs(folder)] if folder.is_dir() else []
            raise DataNotFoundError(chosen / METADATA_FOLDER, MAKE_TARGET,
                                    detail=f"difficulty folders present: {present}")
        return [chosen]
    return sorted(child for child in folder.iterdir() if (child / METADATA_FOLDER).is_dir())


def metadata_files(difficulty_dir: str | Path) -> list[Path]:
    """The metadata files of a difficulty folder in batch order (numeric names by number)."""
    folder = Path(difficulty_dir) / METADATA_FOLDER
    files = [path for path in folder.iterdir() if path.is_file() and path.suffix == ".npy"]
    if not files:
        raise DataNotFoundError(folder / "0.npy", MAKE_TARGET, detail="no metadata files")
    return sorted(files, key=_batch_order)


def _batch_order(path: Path) -> tuple[int, int, str]:
    return (0, int(path.stem), "") if re.fullmatch(r"\d+", path.stem) else (1, 0, path.stem)


def iter_metadata(path: str | Path) -> Iterator[ImageRecord]:
    """The records of one metadata file; blank lines are ignored, anything else malformed is an error."""
    path = Path(path)
    difficulty_dir = path.parent.parent
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != N_COLUMNS:
                raise DataFormatError(path, line_number, f"expected {N_COLUMNS} space-separated columns "
                                      f"(imgs/<batch> sample_<n>.png <index> <label> ...), found {len(fields)}")
            label = fields[LABEL_COLUMN]
            if label not in LABEL_TEXTS:
                raise DataFormatError(path, line_number, f"label {label!r} (column {LABEL_COLUMN + 1}) is not 0 or 1")
            image = difficulty_dir / fields[0] / fields[1]
            if not image.is_file():
                raise DataFormatError(path, line_number, f"names the image {image}, which does not exist; the copy of "
                                      f"the release is incomplete: unpack or generate it again")
            yield ImageRecord(image=image, label=int(label), metadata=path, line=line_number)


def read_records(folder: str | Path, difficulty: str | None = None) -> list[ImageRecord]:
    """Every record of the chosen difficulty folder (or all of them), in folder, batch and line order."""
    records = [record for directory in difficulty_dirs(folder, difficulty)
               for path in metadata_files(directory) for record in iter_metadata(path)]
    if not records:
        raise DataNotFoundError(Path(folder) / (difficulty or "*") / METADATA_FOLDER, MAKE_TARGET,
                                detail="the metadata files list no images")
    return records


def load_image(record: ImageRecord, resolution: int) -> np.ndarray | None:
    """The image of ``record`` as uint8 (resolution, resolution), or None if the file is empty or undecodable.

    Colour images are converted to grayscale (PIL's ITU-R 601-2 luma); a decodable image of another
    size is an error naming the metadata line.
    """
    if record.image.stat().st_size == 0:
        return None
    try:
        with Image.open(record.image) as image:
            pixels = np.asarray(image.convert("L"))
    except UNDECODABLE_ERRORS:
        return None
    if pixels.shape != (resolution, resolution):
        raise DataFormatError(record.metadata, record.line, f"image {record.image} is {pixels.shape[1]}x"
                              f"{pixels.shape[0]} px, expected {resolution}x{resolution}: is this the "
                              f"pathfinder{resolution} folder?")
    return pixels


def warn_skipped(skipped: Sequence[Path]) -> None:
    """Warn that ``skipped`` images were left out, naming how many and the first few."""
    if not skipped:
        return
    shown = ", ".join(str(path) for path in skipped[:SHOWN_SKIPPED])
    more = f" and {len(skipped) - SHOWN_SKIPPED} more" if len(skipped) > SHOWN_SKIPPED else ""
    warnings.warn(f"skipped {len(skipped)} empty or undecodable Pathfinder image(s): {shown}{more}",
                  SkippedImagesWarning, stacklevel=2)
