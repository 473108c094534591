"""Direct labels pushed apart and off the drawn points (pixel geometry, no drawing)."""

from __future__ import annotations

import itertools

import pytest

from lra_snn.cli.figure_labels import place_labels, spread_labels

BOUNDS = (0.0, -1000.0, 1000.0, 1000.0)


def right_and_left(x: float, y: float, width: float = 40.0, height: float = 10.0, offset: float = 5.0):
    """The label box of a point at (x, y), right of it and left of it."""
    return (x + offset, y - height / 2, x + offset + width, y + height / 2), (
        x - offset - width,
        y - height / 2,
        x - offset,
        y + height / 2,
    )


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_two_labels_at_one_point_move_apart_by_their_height_and_the_gap():
    box = (0.0, 0.0, 40.0, 10.0)
    assert spread_labels([box, box], gap=2.0) == pytest.approx([-6.0, 6.0])


def test_labels_that_do_not_collide_stay():
    assert spread_labels([(0, 0, 40, 10), (50, 0, 90, 10), (0, 20, 40, 30)], gap=2.0) == [0.0, 0.0, 0.0]


def test_a_label_on_a_marker_moves_just_past_it():
    labels = [right_and_left(100.0, 0.0)]
    marker = (104.0, -4.0, 112.0, 4.0)  # covers the label's first pixels
    [(side, dx, dy)] = place_labels(labels, [marker], BOUNDS, gap=2.0)
    assert (side, dx, dy) == (-1, 0.0, 0.0)  # the left side is free: it goes there, unmoved
    [(side, dx, dy)] = place_labels(labels, [marker, (50.0, -4.0, 96.0, 4.0)], BOUNDS, gap=2.0)
    assert (side, dx, dy) == (1, pytest.approx(112.0 + 2.0 - 105.0), 0.0)  # both sides blocked: right, pushed on


def test_a_label_that_would_leave_the_axes_goes_left():
    [(side, _, _)] = place_labels([right_and_left(980.0, 0.0)], [], BOUNDS)
    assert side == -1


def test_a_crowded_cluster_ends_with_no_label_on_another_or_on_a_marker():
    points = [(100.0 + 3 * i, 50.0 + 2 * i) for i in range(8)]
    labels = [right_and_left(x, y) for x, y in points]
    markers = [(x - 4, y - 4, x + 4, y + 4) for x, y in points]
    placed = place_labels(labels, markers, BOUNDS, gap=1.0)
    boxes = []
    for (right, left), (side, dx, dy) in zip(labels, placed):
        x0, y0, x1, y1 = right if side > 0 else left
        boxes.append((x0 + dx, y0 + dy, x1 + dx, y1 + dy))
    assert not [pair for pair in itertools.combinations(boxes, 2) if overlap(*pair)]
    assert not [(box, marker) for box in boxes for marker in markers if overlap(box, marker)]
