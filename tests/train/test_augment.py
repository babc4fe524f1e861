import numpy as np
import pytest

from visionassist_seg.ops import distance_maps, spatial_weights
from visionassist_seg.train.augment import Sample, augment, draw_lines, gaussian_blur, hflip


def _asymmetric_sample() -> Sample:
    label = np.zeros((40, 64), np.uint8)
    label[10:25, 5:20] = 1  # pupil on the left: a flip moves it to the right
    image = np.full(label.shape, 150, np.uint8)
    image[label == 1] = 20
    image[:, 60:] = 255  # bright bar on the right
    return Sample(image, label, spatial_weights(label), distance_maps(label))


@pytest.mark.parametrize("seed", range(12))
def test_augment_keeps_image_label_weights_and_maps_aligned(seed):
    sample = _asymmetric_sample()
    out = augment(sample, np.random.default_rng(seed))
    flipped = out.label[15, 50] == 1
    expected = hflip(sample) if flipped else sample
    np.testing.assert_array_equal(out.label, expected.label)
    np.testing.assert_array_equal(out.spatial_weights, expected.spatial_weights)
    np.testing.assert_array_equal(out.dist_map, expected.dist_map)
    # the maps still describe the (possibly flipped) label: EDT is mirror-symmetric
    np.testing.assert_allclose(out.dist_map, distance_maps(np.ascontiguousarray(out.label)), atol=1e-6)
    # the image moved with them: the dark pupil is where the label says
    pupil = out.label == 1
    assert out.image[pupil].mean() < out.image[~pupil].mean() - 50


def test_hflip_moves_every_array():
    sample = _asymmetric_sample()
    out = hflip(sample)
    np.testing.assert_array_equal(out.label, sample.label[:, ::-1])
    np.testing.assert_array_equal(out.spatial_weights, sample.spatial_weights[:, ::-1])
    np.testing.assert_array_equal(out.dist_map, sample.dist_map[:, :, ::-1])
    np.testing.assert_array_equal(out.image, sample.image[:, ::-1])


def test_augment_is_reproducible_from_the_seed_and_flips_about_half():
    sample = _asymmetric_sample()
    runs = [augment(sample, np.random.default_rng(7)) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].image, runs[1].image)
    np.testing.assert_array_equal(runs[0].label, runs[1].label)
    rng = np.random.default_rng(0)
    flips = sum(augment(sample, rng).label[15, 50] == 1 for _ in range(200))
    assert 70 < flips < 130


def test_draw_lines_adds_white_pixels_and_leaves_input_untouched():
    image = np.zeros((400, 640), np.uint8)
    out = draw_lines(image, np.random.default_rng(3))
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert (out == 255).sum() > 100
    assert image.max() == 0


def test_draw_lines_survives_near_vertical_lines():
    image = np.zeros((40, 64), np.uint8)
    for seed in range(50):
        draw_lines(image, np.random.default_rng(seed), scale=0.1)


def test_gaussian_blur_smooths_an_edge_and_scales_its_kernel():
    image = np.zeros((40, 64), np.uint8)
    image[:, 32:] = 255
    blurred = gaussian_blur(image, 4.0)
    assert 0 < blurred[20, 31] < 255 and 0 < blurred[20, 32] < 255
    assert gaussian_blur(image, 4.0, scale=0.25).shape == image.shape
