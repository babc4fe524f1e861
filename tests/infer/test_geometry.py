import cv2
import numpy as np
import pytest

from visionassist_seg.infer.frames import place
from visionassist_seg.infer.geometry import fit_pupil, mask_centroid, pupil_mask


def _logits(mask: np.ndarray, margin: float = 4.0) -> np.ndarray:
    """Logits whose argmax is ``mask`` with the given margin."""
    pupil = np.where(mask, margin, -margin).astype(np.float32)
    return np.stack([np.zeros_like(pupil), pupil])


def _ellipse_mask(center, axes, angle, shape=(400, 640)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, ((center[0], center[1]), axes, angle), 1, -1)
    return mask.astype(bool)


def test_no_pupil_gives_nulls():
    fit = fit_pupil(_logits(np.zeros((400, 640), bool)))
    assert not fit.pupil
    assert fit.row("a.png", 0) == {
        "source": "a.png", "frame": 0, "pupil": False, "center_x": None, "center_y": None,
        "axes": None, "angle": None, "area": None, "confidence": None,
    }  # fmt: skip


def test_ellipse_of_a_drawn_ellipse():
    mask = _ellipse_mask((300, 200), (80, 40), 30)
    fit = fit_pupil(_logits(mask))
    assert fit.center_x == pytest.approx(300, abs=0.5) and fit.center_y == pytest.approx(200, abs=0.5)
    # boundary pixel centres lie half a pixel inside the drawn edge
    assert fit.axes[0] == pytest.approx(79, abs=1.5) and fit.axes[1] == pytest.approx(39, abs=1.5)
    assert fit.angle == pytest.approx(30, abs=2)
    assert fit.area == mask.sum()


def test_angle_is_the_major_axis_direction():
    fit = fit_pupil(_logits(_ellipse_mask((300, 200), (30, 90), 0)))  # tall ellipse
    assert fit.axes[0] > fit.axes[1] and fit.angle == pytest.approx(90, abs=2)


def test_the_largest_region_wins_and_confidence_is_its_mean_probability():
    mask = _ellipse_mask((100, 100), (20, 20), 0) | _ellipse_mask((400, 250), (60, 50), 0)
    fit = fit_pupil(_logits(mask, margin=np.log(3)))  # p = 3 / 4 everywhere in the region
    assert fit.center_x == pytest.approx(400, abs=0.5) and fit.confidence == pytest.approx(0.75)


def test_a_tiny_region_gets_the_circle_of_its_area():
    mask = np.zeros((400, 640), bool)
    mask[10:12, 20:22] = True  # four boundary points: too few for fitEllipse
    fit = fit_pupil(_logits(mask))
    assert (fit.center_x, fit.center_y) == (20.5, 10.5) and fit.axes[0] == pytest.approx(2 * np.sqrt(4 / np.pi))


def test_letterboxed_geometry_is_in_frame_pixels():
    placement = place(800, 800)  # half size, window x 120..520
    mask = np.zeros((400, 640), bool)
    mask[:, 120:520] = _ellipse_mask((200, 100), (40, 40), 0, shape=(400, 400))
    fit = fit_pupil(_logits(mask), placement)
    assert fit.center_x == pytest.approx(400.5, abs=1) and fit.center_y == pytest.approx(200.5, abs=1)
    assert fit.axes[0] == pytest.approx(78, abs=3) and fit.area == pytest.approx(mask.sum() * 4)


def test_pupil_outside_the_window_is_ignored():
    placement = place(800, 800)
    mask = np.zeros((400, 640), bool)
    mask[100:150, 10:60] = True  # in the padding band
    assert not fit_pupil(_logits(mask), placement).pupil


def test_pupil_mask_ties_go_to_background():
    assert pupil_mask(np.zeros((2, 3, 3), np.float32)).sum() == 0


def test_mask_centroid():
    mask = np.zeros((5, 5), bool)
    mask[1, 1] = mask[3, 3] = True
    assert mask_centroid(mask) == (2.0, 2.0) and mask_centroid(np.zeros((3, 3), bool)) is None
