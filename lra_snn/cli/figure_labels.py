"""Direct labels that collide neither with each other nor with the drawn points: where to move each label.

Pure geometry in display units (pixels, y upwards), so the rules are tested without drawing. A label
starts beside its point, right (+1) or left (-1) of it.

- ``spread_labels``: labels whose horizontal extents overlap and whose vertical extents come closer
  than ``gap`` are pushed apart symmetrically (the lower one down, the upper one up; of two at the same
  height the earlier one goes down), pair by pair, until no two collide. A label that collides with
  none keeps its height.
- ``place_labels``: each label goes on the side of its point where it starts on fewer obstacles and
  inside the axes; after spreading, a label lying on an obstacle (a marker, an error bar) moves
  sideways, away from its point, just past the obstacle; the labels are spread again and the two steps
  repeat until no label lies on an obstacle. So labels in a crowded cluster end up in a column beside
  it, each joined to its point by a leader line (drawn by the caller).
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels, y upwards
EPSILON = 1e-6  # pixels: an overlap below this is rounding


def spread_labels(boxes: Sequence[Box], gap: float = 2.0, rounds: int = 1000) -> list[float]:
    """The vertical shift of each box (pixels, up positive) that leaves every pair at least ``gap`` apart.

    Stops after ``rounds`` passes over the pairs even if some still collide (never seen with a figure's labels)."""
    shifts = [0.0] * len(boxes)
    for _ in range(rounds):
        moved = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[i], boxes[j]
                if ax1 <= bx0 or bx1 <= ax0:
                    continue
                ay0, ay1, by0, by1 = ay0 + shifts[i], ay1 + shifts[i], by0 + shifts[j], by1 + shifts[j]
                overlap = min(ay1, by1) - max(ay0, by0) + gap
                if overlap <= EPSILON:
                    continue
                lower, upper = (i, j) if ay0 + ay1 <= by0 + by1 else (j, i)
                shifts[lower] -= overlap / 2
                shifts[upper] += overlap / 2
                moved = True
        if not moved:
            break
    return shifts


def _collide(a: Box, b: Box, gap: float) -> bool:
    """Whether boxes ``a`` and ``b`` come closer than ``gap`` horizontally while overlapping vertically."""
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] and b[1] < a[3]


def _cost(box: Box, obstacles: Sequence[Box], bounds: Box, gap: float) -> int:
    """How bad a label's starting place is: the obstacles it lies on, and 2 more when it leaves ``bounds``."""
    outside = box[0] < bounds[0] or box[2] > bounds[2] or box[1] < bounds[1] or box[3] > bounds[3]
    return sum(_collide(box, obstacle, gap) for obstacle in obstacles) + 2 * outside


def place_labels(
    labels: Sequence[tuple[Box, Box]], obstacles: Sequence[Box], bounds: Box, gap: float = 2.0, rounds: int = 100
) -> list[tuple[int, float, float]]:
    """(side, dx, dy) per label, given its box right and left of its point: the side whose box starts on
    fewer obstacles (leaving ``bounds``, the axes, counts as two; a tie goes right), then the shift in
    pixels that keeps labels apart and off ``obstacles`` (module docstring)."""
    sides = [
        1 if _cost(right, obstacles, bounds, gap) <= _cost(left, obstacles, bounds, gap) else -1
        for right, left in labels
    ]
    boxes = [right if side > 0 else left for (right, left), side in zip(labels, sides)]
    dx = [0.0] * len(boxes)
    dy = [0.0] * len(boxes)
    for _ in range(rounds):
        dy = spread_labels([(x0 + d, y0, x1 + d, y1) for (x0, y0, x1, y1), d in zip(boxes, dx)], gap)
        pushed = False
        for i, ((x0, y0, x1, y1), side) in enumerate(zip(boxes, sides)):
            for obstacle in sorted(obstacles, key=lambda box: side * box[0]):  # the nearest first, going outwards
                box = (x0 + dx[i], y0 + dy[i], x1 + dx[i], y1 + dy[i])
                if _collide(box, obstacle, gap):
                    dx[i] += obstacle[2] + gap - box[0] if side > 0 else obstacle[0] - gap - box[2]
                    pushed = True
        if not pushed:
            break
    return [(side, x, y) for side, x, y in zip(sides, dx, dy)]
