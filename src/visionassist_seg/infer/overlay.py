"""Overlay pictures: predict's frame with mask and ellipse, evaluate's image with label outline and prediction."""

from __future__ import annotations

import cv2
import numpy as np

from visionassist_seg.infer.geometry import PupilFit

MASK_BGR = (0, 200, 0)
ELLIPSE_BGR = (0, 0, 255)
LABEL_BGR = (0, 255, 255)
PREDICTION_BGR = (255, 0, 255)
OPACITY = 0.4


def tint(image_bgr: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Return ``image_bgr`` with ``colour`` blended into the pixels of ``mask``.

    Shape:
        image_bgr: (H, W, 3) uint8; mask: (H, W) bool -> (H, W, 3) uint8
    """
    out = image_bgr.copy()
    blended = (1 - OPACITY) * image_bgr[mask] + OPACITY * np.array(colour, np.float32)
    out[mask] = blended.astype(np.uint8)
    return out


def draw_prediction(grey: np.ndarray, mask: np.ndarray, fit: PupilFit) -> np.ndarray:
    """Return the frame in colour with the pupil mask tinted and the fitted ellipse drawn.

    Shape:
        grey: (H, W) uint8; mask: (H, W) bool -> (H, W, 3) uint8
    """
    out = tint(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), mask, MASK_BGR)
    if fit.pupil:
        thickness = max(1, round(max(grey.shape) / 320))
        box = ((fit.center_x, fit.center_y), fit.axes, fit.angle)
        cv2.ellipse(out, box, ELLIPSE_BGR, thickness, cv2.LINE_AA)
        cv2.drawMarker(out, (round(fit.center_x), round(fit.center_y)), ELLIPSE_BGR, cv2.MARKER_CROSS, 6 * thickness, thickness)
    return out


def draw_evaluation(image: np.ndarray, label: np.ndarray, prediction: np.ndarray, caption: str) -> np.ndarray:
    """Return the image with the prediction tinted, the label's outline drawn and a caption.

    Shape:
        image: (H, W) uint8; label, prediction: (H, W) 0/1 -> (H, W, 3) uint8
    """
    out = tint(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), prediction.astype(bool), PREDICTION_BGR)
    contours, _ = cv2.findContours(label.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, LABEL_BGR, 1, cv2.LINE_AA)
    # On a dark band: readable over any image (a glyph's advance grows with its thickness, so no outline).
    (width, height), baseline = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
    cv2.rectangle(out, (4, 4), (12 + width, 12 + height + baseline), (0, 0, 0), -1)
    cv2.putText(out, caption, (8, 8 + height), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out
