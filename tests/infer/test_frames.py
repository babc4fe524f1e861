import numpy as np
import pytest

from visionassist_seg.infer.frames import mask_to_frame, place, prepare_frame, to_grey
from visionassist_seg.ops import enhance_image


def test_place_full_frame_is_the_whole_canvas():
    placement = place(400, 640)
    assert not placement.resized and (placement.top, placement.left, placement.height, placement.width) == (0, 0, 400, 640)


def test_place_square_frame_is_centred_with_side_bands():
    placement = place(480, 480)
    assert (placement.top, placement.left, placement.height, placement.width) == (0, 120, 400, 400)
    assert placement.pixel_area == pytest.approx(1.44)


def test_window_to_frame_maps_pixel_centres():
    placement = place(200, 320)  # upscaled 2x, fills the canvas
    assert placement.window_to_frame(np.array([[0.5, 0.5], [639.5, 399.5]])).tolist() == [[0.0, 0.0], [319.5, 199.5]]


@pytest.mark.parametrize("shape", [(5, 6), (5, 6, 1), (5, 6, 3), (5, 6, 4)])
def test_to_grey_accepts_grey_and_colour(shape):
    image = np.full(shape, 77, np.uint8)
    grey = to_grey(image)
    assert grey.shape == (5, 6) and grey.dtype == np.uint8 and np.all(grey == 77)


def test_to_grey_keeps_the_top_byte_of_16_bit_frames():
    assert to_grey(np.full((2, 2), 0x4A10, np.uint16)).tolist() == [[0x4A, 0x4A], [0x4A, 0x4A]]


def test_to_grey_rejects_float_frames():
    with pytest.raises(ValueError, match="float"):
        to_grey(np.zeros((2, 2), np.float32))


def test_prepare_frame_at_full_size_is_the_dataset_preprocessing():
    frame = np.random.default_rng(0).integers(0, 255, (400, 640), dtype=np.uint8)
    canvas, placement = prepare_frame(frame)
    assert np.array_equal(canvas, enhance_image(frame)) and not placement.resized
    assert prepare_frame(frame, enhance=False)[0] is frame


def test_prepare_frame_pads_with_the_frame_mean_not_black():
    canvas, placement = prepare_frame(np.full((100, 100), 150, np.uint8), enhance=False)
    assert placement.window == (slice(0, 400), slice(120, 520))
    assert np.all(canvas == 150)


def test_mask_to_frame_returns_the_frame_size():
    placement = place(480, 480)
    mask = np.zeros((400, 640), bool)
    mask[:, 120:320] = True  # left half of the window
    back = mask_to_frame(mask, placement)
    assert back.shape == (480, 480) and back[:, :240].all() and not back[:, 240:].any()
