"""gamma_table / gamma_correct / apply_clahe / enhance_image against the literal published steps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from ops_cases import reference_enhance

from visionassist_seg.data.synthetic import make_sample
from visionassist_seg.ops import HEIGHT, WIDTH, apply_clahe, enhance_image, gamma_correct, gamma_table


def noise_image(shape: tuple[int, int] = (HEIGHT, WIDTH), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def eye_image() -> np.ndarray:
    return make_sample(0, "train", 0)[0]


def test_gamma_table_matches_reference_literal():
    table = gamma_table()
    assert table.dtype == np.uint8
    assert table.shape == (256,)
    assert np.array_equal(table, (255.0 * np.linspace(0, 1, 256) ** 0.8).astype(np.uint8))


def test_gamma_table_truncates_hand_values():
    table = gamma_table()
    assert table[0] == 0
    assert table[255] == 255
    assert table[1] == 3  # 255 * (1/255) ** 0.8 = 255 ** 0.2 = 3.03
    assert table[8] == 15  # 255 * (8/255) ** 0.8 = 15.987: truncated, not rounded
    assert table[200] == 209  # 209.958
    assert (np.diff(table.astype(int)) >= 0).all()


def test_gamma_table_other_gamma():
    assert np.array_equal(gamma_table(0.5), (255.0 * np.linspace(0, 1, 256) ** 0.5).astype(np.uint8))
    assert gamma_table(0.5)[64] == 127  # 255 * sqrt(64/255) = 127.75


def test_gamma_correct_maps_every_level_through_table():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    corrected = gamma_correct(levels)
    assert corrected.dtype == np.uint8
    assert np.array_equal(corrected.ravel(), gamma_table())


@pytest.mark.parametrize("image", [noise_image(), eye_image()], ids=["noise", "eye"])
def test_gamma_correct_matches_cv2_lut(image):
    table = (255.0 * np.linspace(0, 1, 256) ** 0.8).astype(np.uint8)
    assert np.array_equal(gamma_correct(image), cv2.LUT(image, table))


@pytest.mark.parametrize("image", [noise_image(), eye_image()], ids=["noise", "eye"])
def test_apply_clahe_matches_cv2(image):
    expected = cv2.createCLAHE(clipLimit=1.5, tileGridSize=(8, 8)).apply(image)
    result = apply_clahe(image)
    assert result.dtype == np.uint8
    assert np.array_equal(result, expected)


@pytest.mark.parametrize("image", [noise_image(), eye_image(), np.full((HEIGHT, WIDTH), 77, np.uint8)], ids=["noise", "eye", "flat"])
def test_enhance_image_matches_reference(image):
    result = enhance_image(image)
    assert result.dtype == np.uint8
    assert result.shape == image.shape
    assert np.array_equal(result, reference_enhance(image))


def test_enhance_image_is_gamma_then_clahe_not_the_reverse():
    image = eye_image()
    reversed_order = gamma_correct(apply_clahe(image))
    assert np.array_equal(enhance_image(image), apply_clahe(gamma_correct(image)))
    assert not np.array_equal(enhance_image(image), reversed_order)


def test_enhance_image_does_not_modify_input():
    image = eye_image()
    before = image.copy()
    enhance_image(image)
    assert np.array_equal(image, before)


def test_enhance_image_independent_of_opencv_threads():
    image = eye_image()
    default = enhance_image(image)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        single = enhance_image(image)
    finally:
        cv2.setNumThreads(threads)
    assert np.array_equal(default, single)


@pytest.mark.parametrize("op", [gamma_correct, apply_clahe, enhance_image])
def test_intensity_ops_reject_non_uint8(op):
    with pytest.raises(TypeError, match="float32"):
        op(np.zeros((8, 8), np.float32))


@pytest.mark.parametrize("op", [gamma_correct, apply_clahe, enhance_image])
def test_intensity_ops_reject_colour_images(op):
    with pytest.raises(ValueError, match=r"\(8, 8, 3\)"):
        op(np.zeros((8, 8, 3), np.uint8))


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, min_side=8, max_side=64), elements=st.integers(0, 255)))
def test_enhance_image_property(image):
    result = enhance_image(image)
    assert result.dtype == np.uint8
    assert result.shape == image.shape
    assert np.array_equal(result, reference_enhance(image))
    # Gamma < 1 brightens: never darker than the input level.
    assert (gamma_correct(image) >= image).all()
