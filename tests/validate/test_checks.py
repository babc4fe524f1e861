"""Per-row value checks on tiny hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from visionassist_seg.ops import distance_maps, spatial_weights
from visionassist_seg.validate.checks import (
    boundary_band,
    dist_map_problem,
    image_problem,
    label_problem,
    weights_problem,
)


def disc_label(height: int = 24, width: int = 32, radius: float = 5.0) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return (np.hypot(ys - height / 2, xs - width / 2) < radius).astype(np.uint8)


def test_label_problem_accepts_zero_one_and_names_other_values():
    label = disc_label()
    assert label_problem(label) is None
    label[0, 3] = 2
    problem = label_problem(label)
    assert problem is not None and "1 pixels" in problem and "values 2" in problem and "(0, 3)" in problem


def test_boundary_band_is_two_pixels_either_side_of_a_straight_edge():
    label = np.zeros((8, 10), np.uint8)
    label[:, 5:] = 1  # transition between columns 4 and 5: both are boundary pixels
    band = boundary_band(label)
    assert band[:, 2:8].all() and not band[:, :2].any() and not band[:, 8:].any()


def test_weights_problem_accepts_the_published_weights():
    label = disc_label()
    assert weights_problem(spatial_weights(label), label) is None


def test_weights_problem_rejects_values_other_than_0_and_20():
    label = disc_label()
    weights = spatial_weights(label)
    weights[12, 11] = 19.5
    assert "outside {0, 20}" in weights_problem(weights, label)


def test_weights_problem_rejects_weight_far_from_the_boundary():
    label = disc_label()
    weights = spatial_weights(label)
    weights[0, 0] = 20.0
    problem = weights_problem(weights, label)
    assert problem is not None and "more than 2 px" in problem and "(0, 0)" in problem


def test_weights_problem_rejects_any_weight_without_a_pupil():
    label = np.zeros((8, 8), np.uint8)
    weights = np.zeros((8, 8), np.float32)
    assert weights_problem(weights, label) is None
    weights[4, 4] = 20.0
    assert weights_problem(weights, label) is not None


def test_dist_map_problem_accepts_published_maps_with_and_without_pupil():
    label = disc_label()
    assert dist_map_problem(distance_maps(label), label) is None
    empty = np.zeros_like(label)
    assert dist_map_problem(distance_maps(empty), empty) is None


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ((1, 12, 16), 0.01, "pupil channel has the wrong sign"),  # inside the pupil but > 0
        ((1, 0, 0), 0.0, "pupil channel has the wrong sign"),  # outside the pupil but <= 0
        ((0, 0, 0), 0.5, "background channel has the wrong sign"),
        ((1, 0, 0), 1.5, "|value| > 1"),
        ((0, 3, 3), np.nan, "not finite"),
    ],
)
def test_dist_map_problem_names_each_broken_value(where, value, expected):
    label = disc_label()
    maps = distance_maps(label)
    maps[where] = value
    problem = dist_map_problem(maps, label)
    assert problem is not None and expected in problem


def test_dist_map_problem_requires_zero_pupil_channel_without_pupil():
    label = np.zeros((10, 12), np.uint8)
    maps = distance_maps(label)
    maps[1, 5, 5] = -0.1
    assert "not all zero" in dist_map_problem(maps, label)


def test_image_problem_rejects_constant_image_only():
    assert image_problem(np.full((4, 4), 7, np.uint8)) == "image is constant (every pixel is 7)"
    image = np.full((4, 4), 7, np.uint8)
    image[1, 1] = 8
    assert image_problem(image) is None
