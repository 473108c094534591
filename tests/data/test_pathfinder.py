"""Pathfinder / Path-X: the defining property of generated images (markers joined iff positive) at 32 and
128 px, the release layout written and read back, determinism, damaged data (empty, undecodable, 16-bit
images, paths leaving the release), the cache, and the data module end to end."""

from __future__ import annotations

import hashlib
import math
import re
import shutil
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from lra_snn.config import PROJECT_ROOT
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.pathfinder import generate as pathfinder
from lra_snn.data.pathfinder import module as pathfinder_module
from lra_snn.data.pathfinder import source as pathfinder_reader
from lra_snn.data.pathfinder.generate import SnakeParams, draw_image
from lra_snn.data.pathfinder.module import PathfinderDataModule
from lra_snn.data.pathfinder.source import SkippedImagesWarning, generated_dataset
from lra_snn.data.splits import partition
from lra_snn.training.cell import run
from lra_snn.training.validate import ConfigError
from tests.fakes import write_pathfinder_release

CENTRELINE_SAMPLES = 41  # points per primitive when measuring distances independently of the generator


# --------------------------------------------------------------------------- helpers


def sample_centrelines(primitives: dict[str, np.ndarray]) -> np.ndarray:
    """(N, S, 2) points along each primitive's centre line (a disc is S copies of its centre)."""
    t = np.linspace(0.0, 1.0, CENTRELINE_SAMPLES)[None, :, None]
    return primitives["starts"][:, None, :] + t * (primitives["ends"] - primitives["starts"])[:, None, :]


def surface_gaps(primitives: dict[str, np.ndarray]) -> np.ndarray:
    """(N, N) distance between the outlines of every two primitives: points sampled densely along one
    centre line against the other segment, minus both radii.

    Sampling overestimates a centre-line distance by at most half the sample spacing (0.07 px for a
    5 px paddle), far below the margins the tests compare with.
    """
    points = sample_centrelines(primitives)[:, :, None, :]  # (N, S, 1, 2)
    starts, ends = primitives["starts"][None, None], primitives["ends"][None, None]  # (1, 1, N, 2)
    direction = ends - starts
    t = np.clip(np.sum((points - starts) * direction, -1) / np.maximum(np.sum(direction**2, -1), 1e-12), 0, 1)
    nearest = starts + t[..., None] * direction
    to_segment = np.linalg.norm(points - nearest, axis=-1).min(axis=1)  # (N, N): points of i to segment j
    centre = np.minimum(to_segment, to_segment.T)
    return centre - primitives["radii"][:, None] - primitives["radii"][None, :]


def components_of_graph(adjacent: np.ndarray) -> np.ndarray:
    """Connected-component id of every node of a boolean adjacency matrix."""
    labels = np.full(len(adjacent), -1)
    for node in range(len(adjacent)):
        if labels[node] >= 0:
            continue
        labels[node] = node
        queue = deque([node])
        while queue:
            for neighbour in np.flatnonzero(adjacent[queue.popleft()] & (labels < 0)):
                labels[neighbour] = node
                queue.append(neighbour)
    return labels


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of ``mask`` by a disc of ``radius`` pixels."""
    padded = np.pad(mask, radius)
    height, width = mask.shape
    out = np.zeros_like(mask)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy <= radius * radius:
                out |= padded[radius + dy : radius + dy + height, radius + dx : radius + dx + width]
    return out


def flood_fill_labels(mask: np.ndarray) -> np.ndarray:
    """4-connected component id of every pixel of ``mask`` (-1 outside it), by breadth-first flood fills."""
    labels = np.full(mask.shape, -1, dtype=np.int64)
    height, width = mask.shape
    for start in zip(*np.nonzero(mask)):
        if labels[start] >= 0:
            continue
        labels[start] = component = start[0] * width + start[1]
        queue = deque([start])
        while queue:
            y, x = queue.popleft()
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and labels[ny, nx] < 0:
                    labels[ny, nx] = component
                    queue.append((ny, nx))
    return labels


def drawings(resolution: int, count: int, seed: int) -> list[pathfinder.Drawing]:
    params = SnakeParams.lra(resolution)
    rng = np.random.default_rng(seed)
    return [draw_image(params, rng) for _ in range(count)]


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def small_release(
    root: Path, n_images: int = 20, seed: int = 4, contour_length: int = 14, images_per_batch: int = 10
) -> Path:
    """A 32 px release of ``n_images`` under ``root``; returns its difficulty folder."""
    return write_pathfinder_release(
        root, SnakeParams.lra(32, contour_length=contour_length), n_images, seed=seed, images_per_batch=images_per_batch
    )


@pytest.fixture(scope="module")
def release_template(tmp_path_factory) -> Path:
    """A 20-image, 2-batch release drawn once for the module (copied by ``release``)."""
    root = tmp_path_factory.mktemp("template")
    small_release(root)
    return root


@pytest.fixture
def release(release_template: Path, tmp_path: Path) -> Path:
    """A private copy of the template release at ``tmp_path/release``; returns its difficulty folder."""
    shutil.copytree(release_template, tmp_path / "release")
    return tmp_path / "release" / "pathfinder32" / "curv_contour_length_14"


def release_module(root: Path, data_dir: Path, **overrides) -> PathfinderDataModule:
    settings = {"source": "release", "release_dir": root, "resolution": 32, "batch_size": 4, **overrides}
    return PathfinderDataModule(data_dir=data_dir, **settings)


# --------------------------------------------------------------------------- the defining property

DRAWN_PER_RESOLUTION = {32: 36, 128: 20}


@pytest.fixture(scope="module", params=sorted(DRAWN_PER_RESOLUTION), ids=lambda r: f"{r}px")
def drawn(request) -> tuple[SnakeParams, list[pathfinder.Drawing]]:
    resolution = request.param
    return SnakeParams.lra(resolution), drawings(resolution, DRAWN_PER_RESOLUTION[resolution], seed=11)


def test_both_labels_occur_and_snakes_have_the_lra_shape(drawn) -> None:
    params, images = drawn
    assert {d.label for d in images} == {0, 1}
    for d in images:
        prims = d.primitives
        paddles = ~prims["is_disc"]
        counts = np.bincount(prims["snakes"][paddles])
        assert counts[0] == counts[1] == params.contour_length
        assert np.all(counts[2:] == params.distractor_length) and len(counts) - 2 <= params.n_distractors
        lengths = np.linalg.norm(prims["ends"] - prims["starts"], axis=1)[paddles]
        np.testing.assert_allclose(lengths, params.paddle_length)
        assert d.margin in params.margins
        points, radii = np.concatenate([prims["starts"], prims["ends"]]), np.tile(prims["radii"], 2)[:, None]
        assert (points - radii).min() >= params.padding - 1e-9
        assert (points + radii).max() <= params.resolution - params.padding + 1e-9
        for snake in np.unique(prims["snakes"][paddles]):
            rows = np.flatnonzero(paddles & (prims["snakes"] == snake))
            gaps = np.linalg.norm(prims["starts"][rows[1:]] - prims["ends"][rows[:-1]], axis=1)
            np.testing.assert_allclose(gaps, d.margin)  # consecutive paddles: a gap of exactly the margin
            headings = np.arctan2(*(prims["ends"] - prims["starts"])[rows][:, ::-1].T)
            turns = np.angle(np.exp(1j * np.diff(headings)))
            assert np.abs(turns).max() < np.pi / (2 * params.continuity)  # the first lobe of cos(c * turn)


def test_markers_sit_on_target_snake_tips_as_the_label_says(drawn) -> None:
    _, images = drawn
    for d in images:
        prims = d.primitives
        assert prims["is_disc"][list(d.markers)].all() and prims["drawn"][list(d.markers)].all()
        assert int((prims["drawn"] & prims["is_disc"]).sum()) == 2
        snakes = prims["snakes"][list(d.markers)].tolist()
        assert snakes == ([0, 0] if d.label == 1 else [0, 1])
        for marker in d.markers:
            rows = np.flatnonzero(~prims["is_disc"] & (prims["snakes"] == prims["snakes"][marker]))
            tips = np.stack([prims["starts"][rows[0]], prims["ends"][rows[-1]]])
            assert np.min(np.linalg.norm(tips - prims["starts"][marker], axis=1)) < 1e-9


def test_segment_list_joins_markers_exactly_for_positives(drawn) -> None:
    # Primitives closer than the margin (the gap the generator allows inside a snake) are joined.
    _, images = drawn
    for d in images:
        drawn_rows = np.flatnonzero(d.primitives["drawn"])
        prims = {key: values[drawn_rows] for key, values in d.primitives.items()}
        markers = np.searchsorted(drawn_rows, d.markers)
        components = components_of_graph(surface_gaps(prims) <= d.margin)
        joined = components[markers[0]] == components[markers[1]]
        assert joined == (d.label == 1)
        for snake in np.unique(prims["snakes"]):
            # every snake is one chain, and no chain reaches another snake (no distractor bridges)
            assert len(set(components[prims["snakes"] == snake])) == 1
        assert len(set(components)) == len(np.unique(prims["snakes"]))
        if joined:
            assert set(prims["snakes"][components == components[markers[0]]]) == {0}


def test_flood_fill_of_the_dilated_stroke_mask_joins_markers_exactly_for_positives(drawn) -> None:
    params, images = drawn
    scale = params.antialias
    for d in images:
        radius = math.ceil(d.margin * scale / 2)  # canvas pixels; the allowed gap is margin * scale
        assert radius <= d.margin * scale
        labels = flood_fill_labels(dilate(d.canvas > 0, radius))
        prims = d.primitives
        pixels = np.floor(sample_centrelines(prims) * scale).astype(int)  # (N, S, 2) as x, y
        component_of = labels[pixels[..., 1], pixels[..., 0]]  # (N, S)
        drawn_rows = np.flatnonzero(prims["drawn"])
        assert (component_of[drawn_rows] >= 0).all()
        per_snake = {
            int(s): set(component_of[drawn_rows][prims["snakes"][drawn_rows] == s].ravel())
            for s in np.unique(prims["snakes"][drawn_rows])
        }
        assert all(len(found) == 1 for found in per_snake.values()), "a snake falls apart at this dilation"
        owners = [next(iter(found)) for found in per_snake.values()]
        assert len(set(owners)) == len(owners), "two snakes (e.g. via a distractor) merge at this dilation"
        first, second = (component_of[m, 0] for m in d.markers)
        assert (first == second) == (d.label == 1)


def test_final_image_is_normalised_and_downsampled(drawn) -> None:
    params, images = drawn
    for d in images:
        assert d.image.dtype == np.uint8 and d.image.shape == (params.resolution,) * 2
        assert d.image.max() == 255
        assert d.canvas.shape == (params.resolution * params.antialias,) * 2


# --------------------------------------------------------------------------- settings


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="snake_gap"):
        SnakeParams.lra(32, snake_gap=1.0)
    with pytest.raises(ValueError, match="LRA presets exist for resolutions"):
        SnakeParams.lra(64)
    with pytest.raises(TypeError, match="unknown Pathfinder generator settings"):
        SnakeParams.lra(32, wiggle=3)
    with pytest.raises(RuntimeError, match="could not place two target snakes"):
        draw_image(SnakeParams(resolution=8, contour_length=14, max_image_tries=3), np.random.default_rng(0))


@pytest.mark.parametrize("task", ["pathfinder", "pathx"])
def test_configs_list_the_lra_generator_settings(task: str) -> None:
    config = yaml.safe_load((PROJECT_ROOT / "conf" / "data" / f"{task}.yaml").read_text())
    data = config["data"]
    params = SnakeParams.lra(data["resolution"])
    listed = {**data["generator"], "margins": tuple(data["generator"]["margins"])}
    assert listed == {key: getattr(params, key) for key in listed}
    assert config["task_name"] == task == pathfinder_module.TASK_NAMES[data["resolution"]]


# --------------------------------------------------------------------------- release layout


def test_release_layout_and_metadata_lines(tmp_path: Path) -> None:
    folder = small_release(tmp_path, n_images=13, images_per_batch=5)
    assert folder == tmp_path / "pathfinder32" / "curv_contour_length_14"
    assert sorted(p.name for p in (folder / "metadata").iterdir()) == ["0.npy", "1.npy", "2.npy"]
    assert sorted(int(p.name) for p in (folder / "imgs").iterdir()) == [0, 1, 2]
    lines = (folder / "metadata" / "2.npy").read_text().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"imgs/2 sample_1\.png 1 [01] 1\.0 14 4 2 0\.5 1 1", lines[1])


def test_generated_images_read_back_with_the_release_reader(tmp_path: Path) -> None:
    params = SnakeParams.lra(32)
    folder = write_pathfinder_release(tmp_path, params, 12, seed=9, images_per_batch=7)
    records = pathfinder_reader.read_records(pathfinder_reader.locate_release(tmp_path, 32))
    assert [r.image.relative_to(folder).as_posix() for r in records[6:8]] == [
        "imgs/0/sample_6.png",
        "imgs/1/sample_0.png",
    ]
    batch_rngs = {batch: np.random.default_rng([9, batch]) for batch in (0, 1)}  # seeded by (seed, batch)
    for record in records:
        drawing = draw_image(params, batch_rngs[int(record.image.parent.name)])
        assert record.label == drawing.label
        np.testing.assert_array_equal(pathfinder_reader.load_image(record, 32), drawing.image)


def test_locate_release_accepts_the_release_nesting(tmp_path: Path) -> None:
    small_release(tmp_path / "lra_release" / "lra_release", n_images=2)
    found = pathfinder_reader.locate_release(tmp_path, 32)
    assert found == tmp_path / "lra_release" / "lra_release" / "pathfinder32"
    with pytest.raises(DataNotFoundError, match="make data-lra") as error:
        pathfinder_reader.locate_release(tmp_path / "nowhere", 32)
    assert "nowhere" in str(error.value) and "data.source=generate" in str(error.value)
    with pytest.raises(DataNotFoundError, match="pathfinder128"):
        pathfinder_reader.locate_release(tmp_path, 128)


def test_reader_pools_every_difficulty_present_or_the_chosen_one(tmp_path: Path) -> None:
    small_release(tmp_path, n_images=3, contour_length=6)
    small_release(tmp_path, n_images=4, contour_length=9)
    folder = tmp_path / "pathfinder32"
    pooled = pathfinder_reader.read_records(folder)
    assert [r.image.parts[-4] for r in pooled] == ["curv_baseline"] * 3 + ["curv_contour_length_9"] * 4
    assert len(pathfinder_reader.read_records(folder, "curv_contour_length_9")) == 4
    with pytest.raises(DataNotFoundError, match="curv_contour_length_14"):
        pathfinder_reader.read_records(folder, "curv_contour_length_14")


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    params = SnakeParams.lra(32)
    first = tree_digest(write_pathfinder_release(tmp_path / "a", params, 9, seed=21, images_per_batch=4))
    again = tree_digest(write_pathfinder_release(tmp_path / "b", params, 9, seed=21, images_per_batch=4))
    other = tree_digest(write_pathfinder_release(tmp_path / "c", params, 9, seed=22, images_per_batch=4))
    assert len(first) == 9 + 3 and first == again
    assert first.keys() == other.keys() and first != other


def test_generation_gives_the_same_images_in_one_or_two_processes(tmp_path: Path) -> None:
    params = SnakeParams.lra(32)
    one = generated_dataset(params, 9, 4, seed=21, num_proc=1, staging=tmp_path / "one")
    two = generated_dataset(params, 9, 4, seed=21, num_proc=2, staging=tmp_path / "two")
    assert (
        one["image"]
        == two["image"]
        == [f"curv_contour_length_14/imgs/{b}/sample_{i}.png" for b, n in enumerate((4, 4, 1)) for i in range(n)]
    )
    assert one["pixels"] == two["pixels"] and one["label"] == two["label"]
    drawn = [d.image.tobytes() for b, n in enumerate((4, 4, 1)) for d in pathfinder.draw_batch(params, b, n, 21)]
    assert one["pixels"] == drawn


# --------------------------------------------------------------------------- damaged data


def _break_images(folder: Path) -> dict[str, str]:
    images = folder / "imgs" / "0"
    (images / "sample_3.png").write_bytes(b"")
    (images / "sample_5.png").write_bytes(b"this is not a PNG file")
    whole = (images / "sample_7.png").read_bytes()
    (images / "sample_7.png").write_bytes(whole[: len(whole) // 2])
    broken = {str(images / f"sample_{n}.png"): kind for n, kind in ((3, "empty"), (5, "garbage"), (7, "truncated"))}
    return broken


def test_empty_and_undecodable_images_are_skipped_counted_and_never_relabelled(release: Path, tmp_path: Path) -> None:
    folder = release
    broken = _break_images(folder)
    records = pathfinder_reader.read_records(folder.parent)
    module = release_module(tmp_path / "release", tmp_path / "data")
    with pytest.warns(SkippedImagesWarning, match=r"skipped 3 empty or undecodable .*sample_3\.png"):
        module.prepare_data()
    module.setup()
    assert module.skipped_images == 3
    for split, indices in partition(len(records), 0.1, 0.1, seed=0).items():
        kept = [records[i] for i in indices if str(records[i].image) not in broken]
        assert module.split(split).labels.tolist() == [r.label for r in kept]
        images = module.split(split).pixels.take(range(len(kept)))
        for row, record in zip(images, kept):
            np.testing.assert_array_equal(row.reshape(32, 32), pathfinder_reader.load_image(record, 32))
    # a fresh module over the same cache still knows the count
    again = release_module(tmp_path / "release", tmp_path / "data")
    again.setup()
    assert again.skipped_images == 3 and sum(again.class_counts(s).sum() for s in ("train", "val", "test")) == 17


def test_metadata_naming_a_missing_image_is_an_error_naming_file_and_line(release: Path) -> None:
    folder = release
    (folder / "imgs" / "1" / "sample_2.png").unlink()
    with pytest.raises(DataFormatError, match="does not exist") as error:
        pathfinder_reader.read_records(folder.parent)
    assert f"{folder / 'metadata' / '1.npy'}:3:" in str(error.value)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda fields: fields[:5], "found 5"),
        (lambda fields: [*fields[:3], "2", *fields[4:]], "label '2' (column 4) is not 0 or 1"),
    ],
    ids=["columns", "label"],
)
def test_malformed_metadata_lines_name_file_and_line(release: Path, edit, problem: str) -> None:
    folder = release
    path = folder / "metadata" / "0.npy"
    lines = path.read_text().splitlines()
    lines[1] = " ".join(edit(lines[1].split()))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=re.escape(problem)) as error:
        pathfinder_reader.read_records(folder.parent)
    assert error.value.path == path and error.value.line == 2


def test_image_of_the_wrong_size_names_the_metadata_line(release: Path) -> None:
    record = pathfinder_reader.read_records(release.parent)[1]
    with pytest.raises(DataFormatError, match="is 32x32 px, expected 128x128"):
        pathfinder_reader.load_image(record, 128)


def test_a_16_bit_image_is_refused_naming_the_metadata_line(release: Path, tmp_path: Path) -> None:
    path = release / "imgs" / "1" / "sample_4.png"
    deep = (np.asarray(Image.open(path)).astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(path)
    assert Image.open(path).mode.startswith("I")
    with pytest.raises(DataFormatError, match=r"has PIL mode 'I;16', not 8 bits per channel") as error:
        release_module(tmp_path / "release", tmp_path / "data").prepare_data()
    assert error.value.path == release / "metadata" / "1.npy" and error.value.line == 5


@pytest.mark.parametrize("image_path", ["imgs/../../../outside sample_0.png", "/etc sample_0.png"])
def test_a_metadata_path_leaving_the_release_is_refused(release: Path, image_path: str) -> None:
    path = release / "metadata" / "0.npy"
    lines = path.read_text().splitlines()
    fields = lines[2].split()
    fields[:2] = image_path.split()
    lines[2] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="leaves the difficulty folder") as error:
        pathfinder_reader.read_records(release.parent)
    assert error.value.path == path and error.value.line == 3


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "lists no images"), (b"imgs/0 sample_0.png 0 1 \xff 14 4 2 0.5 1 1\n", "not valid UTF-8")],
)
def test_an_empty_or_undecodable_metadata_file_is_refused(release: Path, content: bytes, problem: str) -> None:
    path = release / "metadata" / "1.npy"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=re.escape(f"{path}:1: ") + ".*" + re.escape(problem)):
        pathfinder_reader.read_records(release.parent)


def test_interrupted_generation_is_never_read_as_complete(tmp_path: Path, monkeypatch) -> None:
    module = PathfinderDataModule(data_dir=tmp_path, n_images=6, images_per_batch=3, batch_size=2)
    calls = []
    real_draw_batch = pathfinder_reader.draw_batch

    def failing_second_batch(*args):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user stops the run half-way
        return real_draw_batch(*args)

    monkeypatch.setattr(pathfinder_reader, "draw_batch", failing_second_batch)
    with pytest.raises(KeyboardInterrupt):
        module.prepare_data()
    assert not module.cache_dir().exists() and list(module.cache_dir().parent.iterdir()) == []
    with pytest.raises(DataNotFoundError, match="call prepare_data"):
        module.setup()
    monkeypatch.setattr(pathfinder_reader, "draw_batch", real_draw_batch)
    module.prepare_data()
    module.setup()
    assert sum(module.class_counts(s).sum() for s in ("train", "val", "test")) == 6


def test_interrupted_cache_build_is_never_read_as_complete(release: Path, tmp_path: Path, monkeypatch) -> None:
    module = release_module(tmp_path / "release", tmp_path / "data")
    real_load = pathfinder_reader.load_image
    loaded = []

    def failing_load(record, resolution):
        loaded.append(record)
        if len(loaded) == 5:
            raise OSError("disk full")
        return real_load(record, resolution)

    monkeypatch.setattr(pathfinder_reader, "load_image", failing_load)
    with pytest.raises(OSError, match="disk full"):
        module.prepare_data()
    assert not module.cache_dir().exists()
    with pytest.raises(DataNotFoundError, match="call prepare_data"):
        module.setup()
    monkeypatch.setattr(pathfinder_reader, "load_image", real_load)
    module.prepare_data()
    module.setup()
    assert module.skipped_images == 0 and len(module.split("train")) == 16


# --------------------------------------------------------------------------- data module


def test_generated_and_released_files_give_the_same_cached_splits(release: Path, tmp_path: Path) -> None:
    generated = PathfinderDataModule(
        data_dir=tmp_path / "data", n_images=20, images_per_batch=10, generator_seed=4, batch_size=4
    )
    generated.prepare_data()
    generated.setup()
    released = release_module(tmp_path / "release", tmp_path / "data")
    released.prepare_data()
    released.setup()
    assert generated.cache_dir() != released.cache_dir()
    for split in ("train", "val", "test"):
        mine, theirs = generated.split(split), released.split(split)
        np.testing.assert_array_equal(mine.labels, theirs.labels)
        np.testing.assert_array_equal(mine.pixels.take(range(len(mine))), theirs.pixels.take(range(len(theirs))))
    assert [len(generated.split(s)) for s in ("train", "val", "test")] == [16, 2, 2]


def test_batches_in_values_and_tokens_mode(release: Path, tmp_path: Path) -> None:
    values = release_module(tmp_path / "release", tmp_path / "data")
    values.prepare_data()
    values.setup()
    assert values.task == "pathfinder" and values.encoder_kwargs() == {"d_input": 1}
    assert values.task_kwargs() == {"n_classes": 2, "pair": False}
    torch.manual_seed(0)
    batch = next(iter(values.train_dataloader()))
    assert batch["inputs"].shape == (4, 1024, 1) and batch["inputs"].dtype == torch.float32
    assert batch["inputs"].min() >= 0 and batch["inputs"].max() <= 1
    assert batch["lengths"].tolist() == [1024] * 4 and set(batch["labels"].tolist()) <= {0, 1}
    val = next(iter(values.val_dataloader()))
    images, labels = values.split("val").pixels.take([0, 1]), values.split("val").labels
    torch.testing.assert_close(val["inputs"][:, :, 0], torch.from_numpy(images / 255.0).float())
    assert val["labels"].tolist() == labels.tolist()

    tokens = release_module(tmp_path / "release", tmp_path / "data", mode="tokens")
    tokens.prepare_data()
    tokens.setup()
    assert tokens.cache_dir() == values.cache_dir()  # the mode does not change the cache
    assert tokens.encoder_kwargs() == {"vocab_size": 259}
    test = next(iter(tokens.test_dataloader()))
    assert test["inputs"].dtype == torch.int64 and test["inputs"].shape == (2, 1024)
    expected = torch.from_numpy(tokens.split("test").pixels.take([0, 1]).astype(np.int64) + 3)
    torch.testing.assert_close(test["inputs"], expected)


def test_module_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs difficulty in"):
        PathfinderDataModule(data_dir=tmp_path, difficulty=None)
    with pytest.raises(ValueError, match="contradicts difficulty"):
        PathfinderDataModule(data_dir=tmp_path, generator={"contour_length": 9})
    with pytest.raises(ValueError, match="needs release_dir"):
        PathfinderDataModule(data_dir=tmp_path, source="release")
    with pytest.raises(ValueError, match="leave an empty split"):
        PathfinderDataModule(data_dir=tmp_path, n_images=5)
    with pytest.raises(ValueError, match="mode must be one of"):
        PathfinderDataModule(data_dir=tmp_path, mode="pixels")


def test_a_missing_release_is_refused_before_anything_runs(compose_train, tmp_path: Path) -> None:
    cfg = compose_train(
        "data=pathfinder", "model=s4d", "profile=tiny", "data.source=release", f"data.release_dir={tmp_path}/nowhere"
    )
    with pytest.raises(ConfigError, match="make data-lra") as error:
        run(cfg)
    assert "nowhere" in str(error.value) and "data.source=generate" in str(error.value)
    assert not Path(cfg.paths.result_file).exists() and not (tmp_path / "data" / "cache").exists()


def test_tiny_pathfinder_trains_end_to_end(compose_train) -> None:
    cfg = compose_train("data=pathfinder", "model=s4d", "profile=tiny")
    record = run(cfg)
    assert record["status"] == "completed"
    assert record["task"] == "pathfinder" and record["steps"] > 0
    assert 0 <= record["metrics"]["test/acc"] <= 1 and 0.5 <= record["metrics"]["test/majority_rate"] <= 1
    assert record["config"]["data"]["n_images"] == 40


def test_tiny_pathx_trains_end_to_end(compose_train) -> None:
    record = run(compose_train("data=pathx", "model=s4d", "profile=tiny"))
    assert record["status"] == "completed"
    assert record["task"] == "pathx" and record["steps"] > 0
    assert record["config"]["data"]["resolution"] == 128 and record["config"]["data"]["n_images"] == 20
