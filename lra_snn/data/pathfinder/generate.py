"""Seeded Pathfinder / Path-X generator (Linsley et al. 2018; LRA, Tay et al. 2020).

An image holds two target "snakes" (chains of short line segments, "paddles", separated by a gap
of ``margin`` px), distractor snakes of ``contour_length // 3`` paddles, and two marker discs:
on both ends of ONE target snake (label 1) or on one end of each (label 0). Each new paddle turns
by an angle ``d`` drawn with weight ``max(cos(continuity * d), 0) ** 2`` (first lobe only), among
the candidate directions that keep every stroke ``snake_gap`` px clear of the other snakes.
Geometry is continuous (output-pixel units); strokes are rendered at ``antialias`` times the
resolution, downsampled with Lanczos and scaled so each image's maximum is 255. Images are drawn
in batches (LRA's release holds ``imgs/<batch>/`` folders of 1,000), each seeded by
``(seed, batch)`` (``draw_batch``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

# difficulty folder of the LRA release -> contour length (paddles per target snake)
DIFFICULTIES = {"curv_baseline": 6, "curv_contour_length_9": 9, "curv_contour_length_14": 14}
LRA_DIFFICULTY = "curv_contour_length_14"
GENERATOR_VERSION = 1  # bump when draw_image draws different images for the same arguments

# LRA's settings per resolution (lra_benchmarks' TFDS builders). Path-X keeps the original
# generator's default paddle_length of 5 px; each Path-X image draws its margin from (2, 3).
LRA_PRESETS: dict[int, dict[str, Any]] = {
    32: {
        "paddle_length": 2.0,
        "paddle_thickness": 0.5,
        "marker_radius": 1.5,
        "seed_distance": 7.0,
        "continuity": 1.0,
        "margins": (1,),
        "snake_contrast": 2.0,
        "paddle_contrast": 0.75,
        "distractor_budget": 20,
        "snake_gap": 2.0,
    },
    128: {
        "paddle_length": 5.0,
        "paddle_thickness": 1.5,
        "marker_radius": 3.0,
        "seed_distance": 20.0,
        "continuity": 1.8,
        "margins": (2, 3),
        "snake_contrast": 0.9,
        "paddle_contrast": 1.0,
        "distractor_budget": 35,
        "snake_gap": 4.0,
    },
}

MARKER_INTENSITY = 1.0
TARGET_SNAKES = (0, 1)


@dataclass(frozen=True)
class SnakeParams:
    """Every setting of the generator (lengths in output pixels).

    ``margins``: the gap between consecutive paddles of a snake, one value drawn per image.
    ``snake_gap``: the least distance between the strokes (or marker discs) of two different
    snakes; it must exceed every margin, so a gap inside a snake is always narrower than a gap
    between snakes. ``distractor_budget // distractor_length`` distractor snakes are attempted;
    one that finds no room in ``max_snake_tries`` seeds is left out (as in LRA's generator).
    Strokes are drawn with intensity ``snake_contrast * paddle_contrast``, markers with 1.
    """

    resolution: int = 32
    contour_length: int = 14
    paddle_length: float = 2.0
    paddle_thickness: float = 0.5
    margins: tuple[int, ...] = (1,)
    marker_radius: float = 1.5
    seed_distance: float = 7.0
    continuity: float = 1.0
    snake_contrast: float = 2.0
    paddle_contrast: float = 0.75
    distractor_budget: int = 20
    snake_gap: float = 2.0
    padding: float = 1.0
    antialias: int = 2
    n_directions: int = 36
    max_snake_tries: int = 20
    max_image_tries: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "margins", tuple(int(m) for m in self.margins))
        problems = []
        if self.resolution < 8:
            problems.append(f"resolution must be at least 8 px, got {self.resolution}")
        if self.contour_length < 3:
            problems.append(
                f"contour_length must be at least 3 (distractors get contour_length // 3), got {self.contour_length}"
            )
        if not self.margins or min(self.margins) < 1:
            problems.append(f"margins must be a non-empty list of gaps >= 1 px, got {list(self.margins)}")
        elif self.snake_gap <= max(self.margins):
            problems.append(
                f"snake_gap ({self.snake_gap}) must exceed every margin ({list(self.margins)}), "
                f"or gaps inside a snake could not be told from gaps between snakes"
            )
        if not self.continuity > 0:
            problems.append(f"continuity must be positive, got {self.continuity}")
        if self.antialias < 1 or self.n_directions < 4:
            problems.append(f"need antialias >= 1 and n_directions >= 4, got {self.antialias}, {self.n_directions}")
        for name in ("paddle_length", "paddle_thickness", "marker_radius", "seed_distance"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if problems:
            raise ValueError("invalid Pathfinder generator settings: " + "; ".join(problems))

    @classmethod
    def lra(cls, resolution: int, **overrides: Any) -> SnakeParams:
        """LRA's settings at ``resolution`` (32 or 128), with ``overrides`` applied."""
        if resolution not in LRA_PRESETS:
            raise ValueError(
                f"LRA presets exist for resolutions {sorted(LRA_PRESETS)}, got {resolution}; "
                f"give every setting explicitly to SnakeParams instead"
            )
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown Pathfinder generator settings {sorted(unknown)}")
        return cls(resolution=resolution, **{**LRA_PRESETS[resolution], **overrides})

    @property
    def distractor_length(self) -> int:
        return self.contour_length // 3

    @property
    def n_distractors(self) -> int:
        return self.distractor_budget // self.distractor_length

    @property
    def stroke_radius(self) -> float:
        return self.paddle_thickness / 2

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON values (for cache keys)."""
        return {**dataclasses.asdict(self), "margins": list(self.margins)}


def difficulty_folder(contour_length: int) -> str:
    """The release's folder name for snakes of ``contour_length`` paddles."""
    for name, length in DIFFICULTIES.items():
        if length == contour_length:
            return name
    return f"curv_contour_length_{contour_length}"


# --------------------------------------------------------------------------- geometry


def point_segment_distance(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Distance from ``points`` (..., 2) to segments ``starts``-``ends`` (..., 2), broadcast."""
    dx, dy = ends[..., 0] - starts[..., 0], ends[..., 1] - starts[..., 1]
    px, py = points[..., 0] - starts[..., 0], points[..., 1] - starts[..., 1]
    t = (px * dx + py * dy) / np.maximum(dx * dx + dy * dy, 1e-12)
    t = np.minimum(np.maximum(t, 0.0), 1.0)
    return np.hypot(px - t * dx, py - t * dy)


def segment_distances(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
    """Pairwise distances between segments a (K, 2) and b (N, 2): (K, N); 0 where they cross.

    Without a crossing the distance is the least of the four endpoint-to-segment distances. The
    crossing test uses cross products: with w = b0 - a0, p = da x w, q = db x w and c = da x db,
    the segments cross where p (p + c) < 0 and q (q + c) < 0.
    """
    ends_a = np.stack([a0, a1])[:, :, None, :]  # (2, K, 1, 2)
    ends_b = np.stack([b0, b1])[:, None, :, :]  # (2, 1, N, 2)
    distance = np.minimum(
        point_segment_distance(ends_a, b0[None, :, :], b1[None, :, :]).min(axis=0),
        point_segment_distance(ends_b, a0[:, None, :], a1[:, None, :]).min(axis=0),
    )
    da, db = a1 - a0, b1 - b0
    wx = b0[None, :, 0] - a0[:, None, 0]
    wy = b0[None, :, 1] - a0[:, None, 1]
    p = da[:, None, 0] * wy - da[:, None, 1] * wx
    q = db[None, :, 0] * wy - db[None, :, 1] * wx
    c = da[:, None, 0] * db[None, :, 1] - da[:, None, 1] * db[None, :, 0]
    crossing = (p * (p + c) < 0) & (q * (q + c) < 0)
    return np.where(crossing, 0.0, distance)


def unit(angles: np.ndarray) -> np.ndarray:
    """Unit vectors (..., 2) as (x, y) of ``angles`` in radians."""
    return np.stack([np.cos(angles), np.sin(angles)], axis=-1)


# --------------------------------------------------------------------------- scene


class Scene:
    """The primitives of one image: paddles (segments) and discs (zero-length segments), each a
    capsule with a radius, the snake it belongs to and whether it is drawn (tip discs of the
    target snakes reserve room for a marker; only the two marked tips are drawn)."""

    def __init__(self, capacity: int) -> None:
        self.starts = np.zeros((capacity, 2))
        self.ends = np.zeros((capacity, 2))
        self.radii = np.zeros(capacity)
        self.snakes = np.zeros(capacity, dtype=np.int64)
        self.is_disc = np.zeros(capacity, dtype=bool)
        self.drawn = np.zeros(capacity, dtype=bool)
        self.size = 0

    def add(self, start: np.ndarray, end: np.ndarray, radius: float, snake: int, disc: bool) -> int:
        """Append a primitive; returns its index."""
        if self.size == len(self.radii):
            raise RuntimeError("Scene capacity exceeded")  # capacity is computed from the settings
        index = self.size
        self.starts[index], self.ends[index] = start, end
        self.radii[index], self.snakes[index] = radius, snake
        self.is_disc[index], self.drawn[index] = disc, not disc
        self.size += 1
        return index

    def truncate(self, size: int) -> None:
        """Forget every primitive added after the first ``size`` (a failed snake)."""
        self.size = size

    def clear(
        self, starts: np.ndarray, ends: np.ndarray, radius: float, snake: int, gap: float, ignore: np.ndarray
    ) -> np.ndarray:
        """Which candidate capsules (K, 2)-(K, 2) keep ``gap`` from every primitive that counts.

        Counted: every primitive of another snake, and this snake's paddles except those in
        ``ignore`` (a boolean mask over the scene: the predecessor paddle, the snake's own discs).
        """
        count = self.size
        reach = self.radii[:count] + radius + gap
        low = np.minimum(starts, ends).min(axis=0)
        high = np.maximum(starts, ends).max(axis=0)
        near = np.all(
            (np.minimum(self.starts[:count], self.ends[:count]) - reach[:, None] < high)
            & (np.maximum(self.starts[:count], self.ends[:count]) + reach[:, None] > low),
            axis=1,
        )
        relevant = near & ((self.snakes[:count] != snake) | ~(self.is_disc[:count] | ignore[:count]))
        if not relevant.any():
            return np.ones(len(starts), dtype=bool)
        index = np.flatnonzero(relevant)
        distance = segment_distances(starts, ends, self.starts[index], self.ends[index])
        return np.all(distance - self.radii[index][None, :] - radius >= gap, axis=1)

    def primitives(self) -> dict[str, np.ndarray]:
        """Copies of the arrays of the primitives added so far."""
        count = self.size
        return {
            "starts": self.starts[:count].copy(),
            "ends": self.ends[:count].copy(),
            "radii": self.radii[:count].copy(),
            "snakes": self.snakes[:count].copy(),
            "is_disc": self.is_disc[:count].copy(),
            "drawn": self.drawn[:count].copy(),
        }


@dataclass(frozen=True)
class Drawing:
    """One generated image and the generator's own record of what it drew.

    ``primitives``: arrays ``starts``/``ends`` (N, 2, as x, y in output pixels), ``radii``,
    ``snakes`` (0 and 1 are the targets, 2.. distractors), ``is_disc``, ``drawn``; ``markers``:
    indices of the two drawn marker discs; ``canvas``: the rendering at ``antialias`` x resolution
    before downsampling; ``image``: the final uint8 image.
    """

    label: int
    margin: int
    primitives: dict[str, np.ndarray]
    markers: tuple[int, int]
    canvas: np.ndarray
    image: np.ndarray


def _weighted_index(weights: np.ndarray, rng: np.random.Generator) -> int:
    """An index drawn with probability proportional to ``weights`` (non-negative, not all zero)."""
    cumulative = np.cumsum(weights)
    return min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(weights) - 1)


class _SnakeGrower:
    """Grows snakes into a ``Scene`` with one image's random generator and margin."""

    def __init__(self, params: SnakeParams, rng: np.random.Generator, margin: int, scene: Scene) -> None:
        self.p = params
        self.rng = rng
        self.margin = margin
        self.scene = scene
        self.low = params.padding
        self.high = params.resolution - params.padding

    def inside(self, starts: np.ndarray, ends: np.ndarray, radius: float) -> np.ndarray:
        """Which capsules (K, 2)-(K, 2) lie within the padded image."""
        points = np.concatenate([starts, ends], axis=-1)
        return np.all((points - radius >= self.low) & (points + radius <= self.high), axis=-1)

    def paddle_candidates(self, start_points: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start and end points of paddles leaving ``start_points`` (K, 2) at ``angles`` (K,)."""
        return start_points, start_points + self.p.paddle_length * unit(angles)

    def feasible(self, starts: np.ndarray, ends: np.ndarray, snake: int, ignore: np.ndarray) -> np.ndarray:
        """Which candidate paddles of ``snake`` lie inside the image and keep ``snake_gap`` from the scene."""
        radius = self.p.stroke_radius
        ok = self.inside(starts, ends, radius)
        if ok.any():
            ok[ok] = self.scene.clear(starts[ok], ends[ok], radius, snake, self.p.snake_gap, ignore)
        return ok

    def grow(self, seed: np.ndarray, n_paddles: int, snake: int) -> bool:
        """Add a snake of ``n_paddles`` paddles starting at ``seed``; False (scene unchanged) at a dead end."""
        scene, p = self.scene, self.p
        first_index = scene.size
        ignore = np.zeros(len(scene.radii), dtype=bool)
        angles = self.rng.uniform(0, 2 * np.pi) + np.linspace(0, 2 * np.pi, p.n_directions, endpoint=False)
        weights = np.ones(p.n_directions)
        start_points = np.broadcast_to(seed, (p.n_directions, 2))
        for _ in range(n_paddles):
            starts, ends = self.paddle_candidates(start_points, angles)
            weights = weights * self.feasible(starts, ends, snake, ignore)
            if not weights.any():
                scene.truncate(first_index)
                return False
            choice = _weighted_index(weights, self.rng)
            ignore[:] = False
            ignore[scene.add(starts[choice], ends[choice], p.stroke_radius, snake, disc=False)] = True
            angles, weights = self.turn_candidates(angles[choice])
            start_points = ends[choice] + self.margin * unit(angles)
        return True

    def turn_candidates(self, heading: float) -> tuple[np.ndarray, np.ndarray]:
        """Candidate headings around ``heading`` with weights ``cos(continuity * turn) ** 2`` (first lobe)."""
        half_width = np.pi / (2 * self.p.continuity)
        fractions = (np.arange(self.p.n_directions) + self.rng.uniform()) / self.p.n_directions
        turns = (2 * fractions - 1) * min(half_width, np.pi)
        return heading + turns, np.maximum(np.cos(self.p.continuity * turns), 0.0) ** 2

    def add_tip_disc(self, point: np.ndarray, snake: int) -> int | None:
        """Reserve a marker disc at ``point`` for ``snake``; None if it would crowd another snake."""
        radius = self.p.marker_radius
        point = point[None, :]
        no_own = np.zeros(len(self.scene.radii), dtype=bool)
        no_own[: self.scene.size] = self.scene.snakes[: self.scene.size] == snake
        if not (
            self.inside(point, point, radius)[0]
            and self.scene.clear(point, point, radius, snake, self.p.snake_gap, no_own)[0]
        ):
            return None
        return self.scene.add(point[0], point[0], radius, snake, disc=True)

    def random_points(self, count: int, border: float) -> np.ndarray:
        """``count`` uniform points at least ``border`` inside the padded image."""
        return self.rng.uniform(self.low + border, self.high - border, size=(count, 2))


def _place_targets(grower: _SnakeGrower) -> tuple[list[int], list[int]] | None:
    """Seeds ``seed_distance`` apart, both target snakes and their four tip discs; None on failure.

    Returns the disc indices at the start and at the end of each target snake.
    """
    p, scene = grower.p, grower.scene
    radius = p.marker_radius
    seed_a = grower.random_points(1, radius)[0]
    headings = grower.rng.uniform(0, 2 * np.pi) + np.linspace(0, 2 * np.pi, p.n_directions, endpoint=False)
    seeds_b = seed_a + p.seed_distance * unit(headings)
    usable = np.flatnonzero(grower.inside(seeds_b, seeds_b, radius))
    if not usable.size:
        return None
    seed_b = seeds_b[grower.rng.choice(usable)]
    start_discs = []
    for seed, snake in zip((seed_a, seed_b), TARGET_SNAKES):
        start = grower.add_tip_disc(seed, snake)
        if start is None:
            return None
        start_discs.append(start)
    end_discs = []
    for snake, seed in zip(TARGET_SNAKES, (seed_a, seed_b)):
        grown = any(grower.grow(seed, p.contour_length, snake) for _ in range(p.max_snake_tries))
        end = grower.add_tip_disc(scene.ends[scene.size - 1], snake) if grown else None
        if end is None:
            return None
        end_discs.append(end)
    return start_discs, end_discs


def _place_distractors(grower: _SnakeGrower) -> None:
    """Grow each distractor from up to ``max_snake_tries`` random seeds that lie in free space."""
    p, scene = grower.p, grower.scene
    for snake in range(len(TARGET_SNAKES), len(TARGET_SNAKES) + p.n_distractors):
        seeds = grower.random_points(4 * p.max_snake_tries, p.stroke_radius)
        free = scene.clear(seeds, seeds, p.stroke_radius, snake, p.snake_gap, np.zeros(len(scene.radii), dtype=bool))
        for seed in seeds[free][: p.max_snake_tries]:
            if grower.grow(seed, p.distractor_length, snake):
                break


def _choose_markers(
    label: int, start_discs: list[int], end_discs: list[int], rng: np.random.Generator
) -> tuple[int, int]:
    """Positive: both ends of target snake 0; negative: one (random) end of each target snake."""
    if label == 1:
        return start_discs[0], end_discs[0]
    ends = rng.integers(2, size=2)
    return (start_discs[0], end_discs[0])[ends[0]], (start_discs[1], end_discs[1])[ends[1]]


def draw_image(params: SnakeParams, rng: np.random.Generator) -> Drawing:
    """Draw one labelled image (label drawn first, 0 or 1 with equal odds)."""
    label = int(rng.integers(2))
    margin = int(rng.choice(params.margins))
    capacity = 2 * params.contour_length + params.n_distractors * params.distractor_length + 4
    for _ in range(params.max_image_tries):
        scene = Scene(capacity)
        grower = _SnakeGrower(params, rng, margin, scene)
        placed = _place_targets(grower)
        if placed is None:
            continue
        _place_distractors(grower)
        markers = _choose_markers(label, *placed, rng)
        scene.drawn[list(markers)] = True
        canvas = render(scene, params)
        return Drawing(
            label=label,
            margin=margin,
            primitives=scene.primitives(),
            markers=markers,
            canvas=canvas,
            image=downsample(canvas, params.resolution),
        )
    raise RuntimeError(
        f"could not place two target snakes of {params.contour_length} paddles in {params.max_image_tries} "
        f"tries at {params.resolution} px (paddle_length={params.paddle_length}, snake_gap={params.snake_gap}); "
        f"use a shorter contour_length, a smaller paddle_length or snake_gap, or a larger resolution"
    )


# --------------------------------------------------------------------------- rendering


def render(scene: Scene, params: SnakeParams) -> np.ndarray:
    """Antialiased canvas (float32, ``antialias`` x resolution): the maximum over drawn capsules of
    intensity x coverage, coverage falling from 1 to 0 over one canvas pixel at the capsule's edge.

    Every capsule is evaluated on a square patch of canvas pixels around it (one patch size for
    all, from the largest capsule), all patches at once, then max-scattered into the canvas.
    """
    scale = params.antialias
    size = params.resolution * scale
    drawn = np.flatnonzero(scene.drawn[: scene.size])
    starts, ends, radii = scene.starts[drawn], scene.ends[drawn], scene.radii[drawn]
    reach = (radii + 1.0 / scale)[:, None]
    corner = np.floor((np.minimum(starts, ends) - reach) * scale).astype(np.int64)  # (N, 2) as x, y
    span = int(np.ceil(((np.maximum(starts, ends) + reach) * scale - corner).max()))
    offsets = np.arange(span)
    xs = corner[:, 0, None] + offsets  # (N, span) canvas columns
    ys = corner[:, 1, None] + offsets  # (N, span) canvas rows
    points = np.stack(np.broadcast_arrays(xs[:, None, :], ys[:, :, None]), axis=-1)  # (N, span, span, 2)
    distance = point_segment_distance((points + 0.5) / scale, starts[:, None, None, :], ends[:, None, None, :])
    coverage = np.clip((radii[:, None, None] - distance) * scale + 0.5, 0.0, 1.0)
    intensity = np.where(scene.is_disc[drawn], MARKER_INTENSITY, params.snake_contrast * params.paddle_contrast)
    values = (intensity[:, None, None] * coverage).astype(np.float32)
    inside = (points >= 0).all(axis=-1) & (points < size).all(axis=-1)
    canvas = np.zeros((size, size), dtype=np.float32)
    np.maximum.at(canvas, (points[..., 1][inside], points[..., 0][inside]), values[inside])
    return canvas


def downsample(canvas: np.ndarray, resolution: int) -> np.ndarray:
    """Lanczos-downsample ``canvas`` to ``resolution`` px and scale it so its maximum is 255 (uint8)."""
    small = np.asarray(Image.fromarray(canvas).resize((resolution, resolution), Image.Resampling.LANCZOS))
    small = np.clip(small, 0.0, None)
    peak = small.max()
    if peak <= 0:
        raise RuntimeError("rendered an empty image")  # every image holds two marker discs
    return np.rint(small * (255.0 / peak)).astype(np.uint8)


# --------------------------------------------------------------------------- batches


def draw_batch(params: SnakeParams, batch: int, n_images: int, seed: int) -> Iterator[Drawing]:
    """The ``n_images`` drawings of batch ``batch``: one generator seeded by ``(seed, batch)`` draws them in
    turn, so a batch's images depend neither on the other batches nor on which process draws them."""
    rng = np.random.default_rng([seed, batch])
    for _ in range(n_images):
        yield draw_image(params, rng)


def batch_sizes(n_images: int, images_per_batch: int) -> list[int]:
    """Images per batch: ``images_per_batch`` each, the last batch the rest."""
    if n_images < 1 or images_per_batch < 1:
        raise ValueError(f"need n_images and images_per_batch >= 1, got {n_images}, {images_per_batch}")
    return [min(images_per_batch, n_images - start) for start in range(0, n_images, images_per_batch)]
