"""distance_maps / exact_edt against the four-transform scipy formula of REFERENCE.md section 2."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from ops_cases import SMALL, any_masks, mask_cases, noise_masks, reference_distance_maps
from scipy.ndimage import distance_transform_edt

from visionassist_seg.ops import HEIGHT, WIDTH, distance_maps
from visionassist_seg.ops.distance import exact_edt

FULL = (HEIGHT, WIDTH)


def assert_bit_identical(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype == np.float32
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
    # Same bits, including the sign of zero.
    assert np.array_equal(actual.view(np.uint32), expected.view(np.uint32))


def four_adjacent_to(other: np.ndarray) -> np.ndarray:
    """Return pixels with at least one 4-neighbour in ``other`` (no wrap-around)."""
    near = np.zeros_like(other)
    near[1:, :] |= other[:-1, :]
    near[:-1, :] |= other[1:, :]
    near[:, 1:] |= other[:, :-1]
    near[:, :-1] |= other[:, 1:]
    return near


@pytest.mark.parametrize("shape", [SMALL, FULL], ids=["40x64", "400x640"])
@pytest.mark.parametrize("case", sorted(mask_cases(SMALL)))
def test_distance_maps_match_reference(case, shape):
    mask = mask_cases(shape)[case]
    assert_bit_identical(distance_maps(mask), reference_distance_maps(mask))


def test_distance_maps_closed_eye_is_scipy_all_true_quirk():
    mask = np.zeros(SMALL, np.uint8)
    maps = distance_maps(mask)
    diagonal = np.sqrt((SMALL[0] - 1) ** 2 + (SMALL[1] - 1) ** 2)
    expected = (-(distance_transform_edt(np.ones(SMALL, bool)) - 1) / diagonal).astype(np.float32)
    assert not maps[1].any()
    # Equal values (the formula's 0.0 - 0.0 gives +0 where this negation gives -0).
    assert np.array_equal(maps[0], expected)
    # scipy measures an all-True mask from a virtual zero at row -1, column 0.
    assert maps[0][0, 0] == 0
    assert maps[0][3, 3] == np.float32((1 - 5.0) / diagonal)  # sqrt(4**2 + 3**2) = 5


def test_distance_maps_all_pupil_mirrors_closed_eye():
    closed = distance_maps(np.zeros(SMALL, np.uint8))
    full = distance_maps(np.ones(SMALL, np.uint8))
    assert not full[0].any()
    assert np.array_equal(full[1], closed[0])


def test_distance_maps_single_pixel_hand_values():
    mask = np.zeros((5, 5), np.uint8)
    mask[2, 2] = 1
    maps = distance_maps(mask)
    diagonal = np.sqrt(32.0)
    assert maps[1][2, 2] == 0  # the pixel is its own inner boundary
    assert maps[1][0, 0] == np.float32(np.sqrt(8.0) / diagonal)
    assert maps[1][2, 4] == np.float32(2.0 / diagonal)
    assert maps[0][2, 2] == np.float32(1.0 / diagonal)
    assert maps[0][2, 3] == 0  # background pixel next to the pupil
    assert maps[0][0, 0] == np.float32((1 - np.sqrt(8.0)) / diagonal)


def test_distance_maps_rejects_wrong_dtype_and_rank():
    with pytest.raises(TypeError, match="uint8"):
        distance_maps(np.zeros(SMALL, np.int64))
    with pytest.raises(ValueError, match="2 dimensions"):
        distance_maps(np.zeros((1, *SMALL), np.uint8))


@pytest.mark.parametrize("case", ["random_blobs", "border_left", "two_blobs", "closed_eye"])
def test_distance_maps_independent_of_opencv_threads(case):
    mask = mask_cases(FULL)[case]
    default = distance_maps(mask)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        single = distance_maps(mask)
    finally:
        cv2.setNumThreads(threads)
    assert np.array_equal(default.view(np.uint32), single.view(np.uint32))


@pytest.mark.parametrize("case", ["random_blobs", "border_corner", "few_pixels", "all_but_one_pixel"])
def test_exact_edt_equals_scipy(case):
    nonzero = mask_cases(FULL)[case].astype(bool)
    for pos in (nonzero, ~nonzero):
        expected = distance_transform_edt(pos)
        actual = exact_edt(pos)
        assert actual.dtype == np.float64
        assert np.array_equal(actual, expected)


@settings(max_examples=30, deadline=None)
@given(noise_masks(max_side=40))
def test_exact_edt_equals_scipy_property(mask):
    pos = mask.astype(bool)
    if pos.all():
        pos[0, 0] = False  # exact_edt needs one False pixel
    assert np.array_equal(exact_edt(pos), distance_transform_edt(pos))


@settings(max_examples=40, deadline=None)
@given(any_masks())
def test_distance_maps_match_reference_property(mask):
    assert_bit_identical(distance_maps(mask), reference_distance_maps(mask))


@settings(max_examples=40, deadline=None)
@given(any_masks())
def test_distance_maps_sign_convention_and_inner_boundary(mask):
    maps = distance_maps(mask)
    assert maps.shape == (2, *mask.shape)
    assert maps.dtype == np.float32
    assert np.abs(maps).max() <= 1
    pupil = mask == 1
    if pupil.all() or not pupil.any():
        present = 1 if pupil.any() else 0
        assert not maps[1 - present].any()
        assert (maps[present] <= 0).all()
        return
    for channel, inside in ((1, pupil), (0, ~pupil)):
        values = maps[channel]
        boundary = inside & four_adjacent_to(~inside)
        assert (values[~inside] > 0).all()
        assert (values[boundary] == 0).all()
        assert (values[inside & ~boundary] < 0).all()
    # The two channels mirror each other: 1/diagonal apart, opposite signs.
    diagonal = np.sqrt((mask.shape[0] - 1) ** 2 + (mask.shape[1] - 1) ** 2)
    np.testing.assert_allclose(maps[0] + maps[1], 1 / diagonal, rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", ["random_blobs", "border_corner", "two_blobs"])
def test_exact_edt_gives_scipys_bits(case):
    nonzero = ~mask_cases(FULL)[case].astype(bool)
    assert np.array_equal(exact_edt(nonzero).view(np.uint64), distance_transform_edt(nonzero).view(np.uint64))
