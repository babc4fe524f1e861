"""pupil_mask and spatial_weights against the literal formulas of REFERENCE.md section 2."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from ops_cases import SMALL, any_masks, mask_cases, random_blobs, reference_spatial_weights

from visionassist_seg.ops import HEIGHT, WIDTH, pupil_mask, spatial_weights
from visionassist_seg.ops.labels import nonzero_box

FULL = (HEIGHT, WIDTH)


def near_other_class(mask: np.ndarray) -> np.ndarray:
    """Return pixels whose 3x3 neighbourhood (inside the image) holds both classes."""
    padded = np.pad(mask.astype(bool), 1, mode="edge")
    height, width = mask.shape
    windows = [padded[dr : dr + height, dc : dc + width] for dr in range(3) for dc in range(3)]
    return np.logical_or.reduce(windows) & ~np.logical_and.reduce(windows)


def shift_down(band: np.ndarray) -> np.ndarray:
    shifted = np.zeros_like(band)
    shifted[1:] = band[:-1]
    return shifted


def raw_label(shape: tuple[int, int], seed: int, dtype: type) -> np.ndarray:
    """A 4-class label: sclera and iris rings around a random pupil blob, all classes present."""
    label = np.zeros(shape, dtype=dtype)
    label[random_blobs(shape, seed, count=4) == 1] = 1
    label[random_blobs(shape, seed + 1, count=3) == 1] = 2
    label[random_blobs(shape, seed + 2, count=2) == 1] = 3
    return label


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.int32, np.uint16, np.int16])
def test_pupil_mask_integer_dtypes(dtype):
    label = raw_label(SMALL, seed=3, dtype=dtype)
    mask = pupil_mask(label)
    assert mask.dtype == np.uint8
    assert mask.shape == SMALL
    assert np.array_equal(mask, (label == 3).astype(np.uint8))
    assert set(np.unique(label)) == {0, 1, 2, 3}
    assert set(np.unique(mask)) == {0, 1}


def test_pupil_mask_hand_values():
    label = np.array([[0, 1, 2, 3], [3, 3, 2, 0]], dtype=np.int64)
    assert pupil_mask(label).tolist() == [[0, 0, 0, 1], [1, 1, 0, 0]]


def test_pupil_mask_rejects_float_labels():
    with pytest.raises(TypeError, match="float32"):
        pupil_mask(np.zeros(SMALL, np.float32))


def test_pupil_mask_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\(1, 40, 64\)"):
        pupil_mask(np.zeros((1, *SMALL), np.uint8))


@pytest.mark.parametrize("shape", [SMALL, FULL], ids=["40x64", "400x640"])
@pytest.mark.parametrize("case", sorted(mask_cases(SMALL)))
def test_spatial_weights_match_reference(case, shape):
    mask = mask_cases(shape)[case]
    weights = spatial_weights(mask)
    assert weights.dtype == np.float32
    assert weights.shape == shape
    assert np.array_equal(weights, reference_spatial_weights(mask))


@pytest.mark.parametrize("case", ["closed_eye", "all_pupil"])
def test_spatial_weights_zero_without_boundary(case):
    assert not spatial_weights(mask_cases(SMALL)[case]).any()


def test_spatial_weights_horizontal_edge_band_grows_one_row_down():
    mask = np.zeros(SMALL, np.uint8)
    mask[:20] = 1
    edges = cv2.Canny(mask * np.uint8(255), 0, 3) > 0
    band = spatial_weights(mask) > 0
    assert edges.any()
    assert np.array_equal(band, edges | shift_down(edges))
    assert band.sum(axis=0).tolist() == [edges.sum(axis=0)[0] + 1] * SMALL[1]


def test_spatial_weights_vertical_edge_band_does_not_widen():
    mask = np.zeros(SMALL, np.uint8)
    mask[:, :30] = 1
    edges = cv2.Canny(mask * np.uint8(255), 0, 3) > 0
    assert edges.any()
    assert np.array_equal(spatial_weights(mask) > 0, edges)


def test_spatial_weights_kernel_is_not_a_full_3x3():
    mask = mask_cases(SMALL)["random_blobs"]
    edges = cv2.Canny(mask * np.uint8(255), 0, 3)
    square = cv2.dilate(edges, np.ones((3, 3), np.uint8)) > 0
    sideways = cv2.dilate(edges, np.ones((1, 2), np.uint8)) > 0
    band = spatial_weights(mask) > 0
    assert not np.array_equal(band, square)
    assert not np.array_equal(band, sideways)


def test_spatial_weights_custom_edge_weight():
    mask = mask_cases(SMALL)["two_blobs"]
    weights = spatial_weights(mask, edge_weight=7.5)
    assert set(np.unique(weights).tolist()) == {0.0, 7.5}
    assert np.array_equal(weights > 0, spatial_weights(mask) > 0)


def test_spatial_weights_rejects_non_uint8_mask():
    with pytest.raises(TypeError, match="int64"):
        spatial_weights(np.zeros(SMALL, np.int64))


def test_spatial_weights_independent_of_opencv_threads():
    mask = mask_cases(FULL)["random_blobs"]
    default = spatial_weights(mask)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        single = spatial_weights(mask)
    finally:
        cv2.setNumThreads(threads)
    assert np.array_equal(default, single)


@settings(max_examples=40, deadline=None)
@given(any_masks())
def test_spatial_weights_values_and_band_property(mask):
    weights = spatial_weights(mask)
    assert weights.dtype == np.float32
    assert weights.shape == mask.shape
    assert set(np.unique(weights).tolist()) <= {0.0, 20.0}
    # Canny marks only pixels next to the other class; the 2x1 dilation adds the pixel below.
    near = near_other_class(mask)
    assert not (weights > 0)[~(near | shift_down(near))].any()
    assert np.array_equal(weights, reference_spatial_weights(mask))


@settings(max_examples=25, deadline=None)
@given(
    hnp.arrays(np.int64, (12, 20), elements=st.integers(0, 3)),
    st.sampled_from([np.uint8, np.int64, np.int32]),
)
def test_pupil_mask_property(label, dtype):
    mask = pupil_mask(label.astype(dtype))
    assert mask.dtype == np.uint8
    assert np.array_equal(mask.astype(bool), label == 3)


def test_nonzero_box_hand_values():
    mask = np.zeros((6, 8), np.uint8)
    assert nonzero_box(mask) is None
    mask[2, 3] = mask[3, 5] = 1
    assert nonzero_box(mask) == (slice(2, 4), slice(3, 6))
    assert nonzero_box(mask, margin=1) == (slice(1, 5), slice(2, 7))
    # Clipped to the image.
    assert nonzero_box(mask, margin=4) == (slice(0, 6), slice(0, 8))
    assert nonzero_box(mask.astype(bool)) == (slice(2, 4), slice(3, 6))


@settings(max_examples=60, deadline=None)
@given(
    top=st.integers(0, 6),
    left=st.integers(0, 6),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    flip=st.sampled_from([(False, False), (True, False), (False, True), (True, True)]),
    seed=st.integers(0, 2**16),
)
def test_spatial_weights_crop_equals_full_frame_near_borders(top, left, height, width, flip, seed):
    # spatial_weights runs Canny on the mask's box plus a margin: a blob a few pixels from
    # any border (where the crop is cut short, or not) must give the full-frame result.
    blob = np.random.default_rng(seed).integers(0, 2, (height, width), dtype=np.uint8)
    blob[0, 0] = 1
    mask = np.zeros((24, 30), np.uint8)
    mask[top : top + height, left : left + width] = blob
    mask = mask[:: -1 if flip[0] else 1, :: -1 if flip[1] else 1].copy()
    assert np.array_equal(spatial_weights(mask), reference_spatial_weights(mask))
