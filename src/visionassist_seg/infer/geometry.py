"""Pupil geometry from a segmentation: the largest pupil region, its fitted ellipse, area and confidence."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from visionassist_seg.infer.frames import Placement, place
from visionassist_seg.ops.sample import HEIGHT, WIDTH

# cv2.fitEllipse needs at least five boundary points.
MIN_ELLIPSE_POINTS = 5
CANVAS = place(HEIGHT, WIDTH)


@dataclass(frozen=True)
class PupilFit:
    """The pupil found in one frame, in the frame's own pixels (all None when there is none).

    ``axes`` are the full (major, minor) lengths; ``angle`` is the major axis' direction
    in degrees, clockwise from the image x axis (y points down), in [0, 180).
    """

    pupil: bool
    center_x: float | None = None
    center_y: float | None = None
    axes: tuple[float, float] | None = None
    angle: float | None = None
    area: float | None = None
    confidence: float | None = None

    def row(self, source: str, frame: int) -> dict:
        """Return the prediction row of this fit (rounded for output)."""
        return {
            "source": source,
            "frame": frame,
            "pupil": self.pupil,
            "center_x": _round(self.center_x, 2),
            "center_y": _round(self.center_y, 2),
            "axes": None if self.axes is None else [round(self.axes[0], 2), round(self.axes[1], 2)],
            "angle": _round(self.angle, 2),
            "area": _round(self.area, 1),
            "confidence": _round(self.confidence, 4),
        }


NO_PUPIL = PupilFit(pupil=False)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def pupil_mask(logits: np.ndarray) -> np.ndarray:
    """Return where the pupil logit beats the background logit (argmax over two classes, ties to background).

    Shape:
        logits: (..., 2, H, W) -> (..., H, W) bool
    """
    return logits[..., 1, :, :] > logits[..., 0, :, :]


def fit_pupil(logits: np.ndarray, placement: Placement = CANVAS) -> PupilFit:
    """Return the ellipse, area and confidence of the largest pupil region inside the frame's window.

    The ellipse is ``cv2.fitEllipse`` on the region's outer boundary, mapped to the
    frame's pixels first (so a letterboxed frame gets its own geometry); a region with
    fewer than five boundary points gets the circle of its area at its centroid.

    Shape:
        logits: (2, 400, 640) float
    """
    rows, cols = placement.window
    window = logits[:, rows, cols]
    mask = pupil_mask(window).view(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return NO_PUPIL
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = (int(v) for v in stats[largest])
    region = labels[y : y + h, x : x + w] == largest
    box = window[:, y : y + h, x : x + w]
    confidence = float(np.mean(1.0 / (1.0 + np.exp(box[0][region] - box[1][region]))))
    boundary = _boundary(region) + (x, y)
    center, axes, angle = _ellipse(placement.window_to_frame(boundary), region, (x, y), placement)
    return PupilFit(True, center[0], center[1], axes, angle, area * placement.pixel_area, confidence)


def _boundary(region: np.ndarray) -> np.ndarray:
    """Return the (x, y) pixel centres along the region's outer boundary, shape (K, 2)."""
    contours, _ = cv2.findContours(region.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return max(contours, key=len).reshape(-1, 2).astype(np.float64)


def _ellipse(points: np.ndarray, region: np.ndarray, offset: tuple[int, int], placement: Placement):
    """Return ((cx, cy), (major, minor), angle) of the ellipse through ``points`` (frame pixels)."""
    if len(points) >= MIN_ELLIPSE_POINTS:
        (cx, cy), (width, height), angle = cv2.fitEllipse(points.astype(np.float32))
        if all(math.isfinite(v) for v in (cx, cy, width, height, angle)):
            if height > width:  # OpenCV's angle is the direction of the first axis; report the major one's
                width, height, angle = height, width, angle + 90.0
            return (float(cx), float(cy)), (float(width), float(height)), float(angle % 180.0)
    ys, xs = np.nonzero(region)
    centroid = placement.window_to_frame(np.array([[xs.mean() + offset[0], ys.mean() + offset[1]]]))[0]
    diameter = 2.0 * math.sqrt(len(xs) * placement.pixel_area / math.pi)
    return (float(centroid[0]), float(centroid[1])), (diameter, diameter), 0.0


def mask_centroid(mask: np.ndarray) -> tuple[float, float] | None:
    """Return the (x, y) mean of a mask's pixels, or None if it is empty.

    Shape:
        mask: (H, W) bool or 0/1
    """
    moments = cv2.moments(mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8), binaryImage=True)
    if moments["m00"] == 0:
        return None
    return moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
