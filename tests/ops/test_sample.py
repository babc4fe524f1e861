"""preprocess_sample / check_raw_pair: the composed pipeline and the raw-pair checks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ops_cases import SMALL, mask_cases, random_blobs, reference_distance_maps, reference_enhance, reference_spatial_weights

from visionassist_seg.data.synthetic import make_sample
from visionassist_seg.ops import HEIGHT, WIDTH, PreprocessedSample, check_raw_pair, preprocess_sample

FULL = (HEIGHT, WIDTH)


def raw_label_around(mask: np.ndarray, dtype: type, seed: int = 0) -> np.ndarray:
    """A 4-class label with pupil (3) exactly on ``mask`` and random sclera/iris elsewhere."""
    label = random_blobs(mask.shape, seed, count=4).astype(dtype)
    label[random_blobs(mask.shape, seed + 1, count=2) == 1] = 2
    label[mask == 1] = 3
    return label


def noise_image(shape: tuple[int, int] = FULL, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def assert_matches_reference(sample: PreprocessedSample, image: np.ndarray, raw_label: np.ndarray) -> None:
    mask = (raw_label == 3).astype(np.uint8)
    assert sample.image.dtype == np.uint8 and sample.image.shape == image.shape
    assert sample.label.dtype == np.uint8 and sample.label.shape == image.shape
    assert sample.spatial_weights.dtype == np.float32 and sample.spatial_weights.shape == image.shape
    assert sample.dist_map.dtype == np.float32 and sample.dist_map.shape == (2, *image.shape)
    assert np.array_equal(sample.image, reference_enhance(image))
    assert np.array_equal(sample.label, mask)
    assert np.array_equal(sample.spatial_weights, reference_spatial_weights(mask))
    expected = reference_distance_maps(mask)
    np.testing.assert_allclose(sample.dist_map, expected, rtol=0, atol=1e-6)
    assert np.array_equal(sample.dist_map.view(np.uint32), expected.view(np.uint32))


@pytest.mark.parametrize("dtype", [np.int64, np.uint8])
@pytest.mark.parametrize("case", sorted(mask_cases(SMALL)))
def test_preprocess_sample_matches_reference(case, dtype):
    mask = mask_cases(FULL)[case]
    image = noise_image(seed=len(case))
    raw_label = raw_label_around(mask, dtype)
    assert_matches_reference(preprocess_sample(image, raw_label), image, raw_label)


@pytest.mark.parametrize("index", range(4))
def test_preprocess_sample_synthetic_eyes_match_reference(index):
    image, raw_label = make_sample(0, "train", index)
    assert_matches_reference(preprocess_sample(image, raw_label.astype(np.int64)), image, raw_label)


def test_preprocess_sample_label_dtype_does_not_change_result():
    image, raw_label = make_sample(1, "validation", 0)
    as_uint8 = preprocess_sample(image, raw_label.astype(np.uint8))
    as_int64 = preprocess_sample(image, raw_label.astype(np.int64))
    for field in ("image", "label", "spatial_weights", "dist_map"):
        assert np.array_equal(getattr(as_uint8, field), getattr(as_int64, field))


def test_preprocess_sample_independent_of_opencv_threads():
    image, raw_label = make_sample(0, "train", 1)
    default = preprocess_sample(image, raw_label)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        single = preprocess_sample(image, raw_label)
    finally:
        cv2.setNumThreads(threads)
    assert np.array_equal(default.image, single.image)
    assert np.array_equal(default.spatial_weights, single.spatial_weights)
    assert np.array_equal(default.dist_map.view(np.uint32), single.dist_map.view(np.uint32))


def test_preprocess_sample_other_shape_when_asked():
    mask = mask_cases(SMALL)["two_blobs"]
    image = noise_image(SMALL)
    raw_label = raw_label_around(mask, np.int64)
    assert_matches_reference(preprocess_sample(image, raw_label, shape=SMALL), image, raw_label)


def test_check_raw_pair_accepts_valid_pair():
    image, raw_label = make_sample(0, "train", 0)
    assert check_raw_pair(image, raw_label) is None
    assert check_raw_pair(image, raw_label.astype(np.int64)) is None


@pytest.mark.parametrize(
    ("shape", "message"),
    [((HEIGHT, WIDTH + 1), "400x641"), ((WIDTH, HEIGHT), "640x400"), ((200, 320), "200x320")],
)
def test_check_raw_pair_rejects_wrong_image_size(shape, message):
    with pytest.raises(ValueError, match=message):
        check_raw_pair(np.zeros(shape, np.uint8), np.zeros(FULL, np.int64))
    with pytest.raises(ValueError, match=message):
        preprocess_sample(np.zeros(shape, np.uint8), np.zeros(shape, np.int64))


def test_check_raw_pair_rejects_colour_image():
    with pytest.raises(ValueError, match=r"\(400, 640, 3\)"):
        check_raw_pair(np.zeros((*FULL, 3), np.uint8), np.zeros(FULL, np.int64))


def test_check_raw_pair_rejects_16_bit_image():
    with pytest.raises(ValueError, match="uint16"):
        check_raw_pair(np.zeros(FULL, np.uint16), np.zeros(FULL, np.int64))


@pytest.mark.parametrize("shape", [(200, 320), (HEIGHT, WIDTH // 2), (HEIGHT // 2, WIDTH), (WIDTH, HEIGHT)])
def test_check_raw_pair_rejects_wrong_label_shape_without_tiling(shape):
    # A half-size label would tile exactly onto the image: it must still be refused.
    with pytest.raises(ValueError, match=rf"\({shape[0]}, {shape[1]}\)"):
        check_raw_pair(np.zeros(FULL, np.uint8), np.zeros(shape, np.int64))
    with pytest.raises(ValueError, match="label shape"):
        preprocess_sample(np.zeros(FULL, np.uint8), np.zeros(shape, np.int64))


def test_check_raw_pair_rejects_label_with_extra_axis():
    with pytest.raises(ValueError, match=r"\(400, 640, 1\)"):
        check_raw_pair(np.zeros(FULL, np.uint8), np.zeros((*FULL, 1), np.int64))


@pytest.mark.parametrize(("bad", "message"), [(4, "0..4"), (255, "0..255"), (-1, "-1..3")])
@pytest.mark.parametrize("dtype", [np.int64, np.int16])
def test_check_raw_pair_rejects_label_values_outside_classes(bad, message, dtype):
    raw_label = raw_label_around(mask_cases(FULL)["random_blobs"], np.int64)
    raw_label[7, 9] = bad
    raw_label = raw_label.astype(dtype)
    with pytest.raises(ValueError, match=message):
        check_raw_pair(np.zeros(FULL, np.uint8), raw_label)
    with pytest.raises(ValueError, match=message):
        preprocess_sample(np.zeros(FULL, np.uint8), raw_label)


@pytest.mark.parametrize("dtype", [">i8", "<i4", ">u2", "<i1"])
def test_check_raw_pair_any_integer_layout(dtype):
    raw_label = raw_label_around(mask_cases(FULL)["random_blobs"], np.int64).astype(dtype)
    check_raw_pair(np.zeros(FULL, np.uint8), raw_label)
    if np.dtype(dtype).kind == "i":
        raw_label[3, 4] = -2
        with pytest.raises(ValueError, match="-2..3"):
            check_raw_pair(np.zeros(FULL, np.uint8), raw_label)


def test_check_raw_pair_rejects_uint8_label_value_255():
    raw_label = np.zeros(FULL, np.uint8)
    raw_label[0, 0] = 255
    with pytest.raises(ValueError, match="255"):
        preprocess_sample(np.zeros(FULL, np.uint8), raw_label)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_raw_pair_rejects_float_labels(dtype):
    with pytest.raises(ValueError, match=np.dtype(dtype).name):
        check_raw_pair(np.zeros(FULL, np.uint8), np.zeros(FULL, dtype))
    with pytest.raises(ValueError, match=np.dtype(dtype).name):
        preprocess_sample(np.zeros(FULL, np.uint8), np.zeros(FULL, dtype))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 5), st.sampled_from([np.uint8, np.int64]))
def test_preprocess_sample_small_shape_property(seed, pupils, dtype):
    mask = random_blobs(SMALL, seed, count=pupils)
    image = noise_image(SMALL, seed)
    raw_label = raw_label_around(mask, dtype, seed=seed % 1000)
    assert_matches_reference(preprocess_sample(image, raw_label, shape=SMALL), image, raw_label)
