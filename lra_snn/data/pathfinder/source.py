"""Where Pathfinder / Path-X images (LRA, Tay et al. 2020) come from: the generator or the release layout.

Release: ``<folder>/<difficulty>/metadata/<batch>.npy`` is a TEXT file (despite its name), one line
per image, space separated: ``imgs/<batch> sample_<n>.png <index> <label> <continuity>
<contour_len> <distractor_len> <paddle_len> <paddle_thickness> <margin> <n_contrasts>``; the image
is ``<folder>/<difficulty>/imgs/<batch>/sample_<n>.png``, 8-bit gray. Policy for damaged data: an
empty or undecodable PNG is skipped and counted (the real release holds one empty PNG), never
relabelled; a malformed metadata line, a path leaving the difficulty folder, a metadata line naming
a missing image, an image of the wrong size or not 8 bits deep, or a metadata file without lines is
an error naming the metadata file and line, because each means an incomplete or mixed-up copy of
the release that should be fixed rather than trained on.

Generated: ``n_images`` drawn by ``lra_snn.data.pathfinder.generate`` in batches seeded by
``(seed, batch)``, by ``num_proc`` processes, in the order a release of them would list them.

Both give one ``datasets.Dataset`` of every image in (difficulty, batch, line) order with the
columns ``pixels`` (the image's bytes, row-major; empty if unreadable), ``label`` (int8), ``image``
(its file, or its name in the release layout when generated) and ``readable``.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from lra_snn.data import store
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.lra_release import GENERATE_OVERRIDE
from lra_snn.data.lra_release import MAKE_TARGET as RELEASE_MAKE_TARGET
from lra_snn.data.pathfinder.generate import SnakeParams, batch_sizes, difficulty_folder, draw_batch

if TYPE_CHECKING:
    from datasets import Dataset

N_COLUMNS = 11
LABEL_COLUMN = 3
LABEL_TEXTS = ("0", "1")
METADATA_FOLDER = "metadata"
MAKE_TARGET = "make data-pathfinder (32 px) or make data-pathx (128 px)"
SHOWN_SKIPPED = 5  # paths named in the warning about skipped images
# what PIL raises on a file that is not a decodable image
UNDECODABLE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error)
# PIL modes of 8 bits per channel, converted to gray with PIL's ITU-R 601-2 luma ("L" is gray already)
EIGHT_BIT_MODES = ("L", "LA", "P", "RGB", "RGBA")

COLUMNS: dict[str, store.Column] = {"pixels": "binary", "label": "int8", "image": "string", "readable": "bool"}


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
        RELEASE_MAKE_TARGET,
        detail="looked for <difficulty>/metadata/ folders in "
        + ", ".join(str(c) for c in candidates)
        + f"; or generate the images instead with {GENERATE_OVERRIDE}",
    )


def difficulty_dirs(folder: str | Path, difficulty: str | None = None) -> list[Path]:
    """The chosen difficulty folder of ``folder``, or (``difficulty=None``) every one present, by name."""
    folder = Path(folder)
    if difficulty is not None:
        chosen = folder / difficulty
        if not (chosen / METADATA_FOLDER).is_dir():
            present = [d.name for d in difficulty_dirs(folder)] if folder.is_dir() else []
            raise DataNotFoundError(
                chosen / METADATA_FOLDER, MAKE_TARGET, detail=f"difficulty folders present: {present}"
            )
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
    records = 0
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                fields = raw.decode("utf-8").split()
            except UnicodeDecodeError as error:
                problem = f"not valid UTF-8 ({error.reason} at byte {error.start})"
                raise DataFormatError(path, line_number, problem) from None
            if not fields:
                continue
            if len(fields) != N_COLUMNS:
                raise DataFormatError(
                    path,
                    line_number,
                    f"expected {N_COLUMNS} space-separated columns "
                    f"(imgs/<batch> sample_<n>.png <index> <label> ...), found {len(fields)}",
                )
            label = fields[LABEL_COLUMN]
            if label not in LABEL_TEXTS:
                raise DataFormatError(path, line_number, f"label {label!r} (column {LABEL_COLUMN + 1}) is not 0 or 1")
            relative = PurePosixPath(fields[0]) / fields[1]
            if relative.is_absolute() or ".." in relative.parts or "\\" in str(relative):
                raise DataFormatError(
                    path,
                    line_number,
                    f"image path {str(relative)!r} leaves the difficulty folder "
                    f"{difficulty_dir}; metadata paths are relative, like imgs/0 sample_0.png",
                )
            image = difficulty_dir / relative
            if not image.is_file():
                raise DataFormatError(
                    path,
                    line_number,
                    f"names the image {image}, which does not exist; the copy of "
                    f"the release is incomplete: unpack or generate it again",
                )
            records += 1
            yield ImageRecord(image=image, label=int(label), metadata=path, line=line_number)
    if not records:
        raise DataFormatError(path, 1, "the metadata file lists no images; the copy of the release is incomplete")


def read_records(folder: str | Path, difficulty: str | None = None) -> list[ImageRecord]:
    """Every record of the chosen difficulty folder (or all of them), in folder, batch and line order."""
    return [
        record
        for directory in difficulty_dirs(folder, difficulty)
        for path in metadata_files(directory)
        for record in iter_metadata(path)
    ]


def load_image(record: ImageRecord, resolution: int) -> np.ndarray | None:
    """The image of ``record`` as uint8 (resolution, resolution), or None if the file is empty or undecodable.

    Colour images of 8 bits per channel are converted to gray (PIL's ITU-R 601-2 luma); an image
    of another depth (e.g. a 16-bit PNG) or size is an error naming the metadata line.
    """
    if record.image.stat().st_size == 0:
        return None
    try:
        with Image.open(record.image) as image:
            mode = image.mode
            pixels = np.asarray(image.convert("L")) if mode in EIGHT_BIT_MODES else None
    except UNDECODABLE_ERRORS:
        return None
    if pixels is None:
        raise DataFormatError(
            record.metadata,
            record.line,
            f"image {record.image} has PIL mode {mode!r}, not 8 bits "
            f"per channel; Pathfinder images are 8-bit gray (mode L): convert the file to 8 bits",
        )
    if pixels.shape != (resolution, resolution):
        raise DataFormatError(
            record.metadata,
            record.line,
            f"image {record.image} is {pixels.shape[1]}x"
            f"{pixels.shape[0]} px, expected {resolution}x{resolution}: is this the "
            f"pathfinder{resolution} folder?",
        )
    return pixels


def warn_skipped(skipped: Sequence[str]) -> None:
    """Warn that ``skipped`` images were left out, naming how many and the first few."""
    if not skipped:
        return
    shown = ", ".join(skipped[:SHOWN_SKIPPED])
    more = f" and {len(skipped) - SHOWN_SKIPPED} more" if len(skipped) > SHOWN_SKIPPED else ""
    warnings.warn(
        f"skipped {len(skipped)} empty or undecodable Pathfinder image(s): {shown}{more}",
        SkippedImagesWarning,
        stacklevel=2,
    )


def _release_rows(folder: str, difficulty: str | None, resolution: int) -> Iterator[dict[str, Any]]:
    for record in read_records(folder, difficulty):
        pixels = load_image(record, resolution)
        yield {
            "pixels": b"" if pixels is None else pixels.tobytes(),
            "label": record.label,
            "image": str(record.image),
            "readable": pixels is not None,
        }


def release_dataset(folder: Path, difficulty: str | None, resolution: int, staging: Path) -> Dataset:
    """Every image of the chosen difficulty folder of a release (or of all of them)."""
    return store.from_generator(
        _release_rows,
        COLUMNS,
        staging,
        "release-images",
        folder=str(folder),
        difficulty=difficulty,
        resolution=resolution,
    )


def _generated_rows(
    batches: list[int], counts: list[int], params: dict[str, Any], seed: int
) -> Iterator[dict[str, Any]]:
    snake_params = SnakeParams(**{**params, "margins": tuple(params["margins"])})
    difficulty = difficulty_folder(snake_params.contour_length)
    for batch, count in zip(batches, counts):
        for index, drawing in enumerate(draw_batch(snake_params, batch, count, seed)):
            yield {
                "pixels": drawing.image.tobytes(),
                "label": drawing.label,
                "image": f"{difficulty}/imgs/{batch}/sample_{index}.png",
                "readable": True,
            }


def generated_dataset(
    params: SnakeParams, n_images: int, images_per_batch: int, seed: int, num_proc: int, staging: Path
) -> Dataset:
    """``n_images`` generated images in batches of ``images_per_batch``, drawn by ``num_proc`` processes."""
    counts = batch_sizes(n_images, images_per_batch)
    return store.from_generator(
        _generated_rows,
        COLUMNS,
        staging,
        "generated-images",
        num_proc=min(num_proc, len(counts)),
        batches=list(range(len(counts))),
        counts=counts,
        params=params.as_dict(),
        seed=seed,
    )
