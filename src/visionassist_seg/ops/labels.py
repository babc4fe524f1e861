"""Label steps: the binary pupil mask and the boundary spatial weights."""

from __future__ import annotations

import cv2
import numpy as np

from visionassist_seg.ops.check import check_array

PUPIL_CLASS = 3
EDGE_WEIGHT = 20.0
# cv2.dilate reads a (3, 3) tuple as the kernel *array* [[3], [3]]: a 2x1 column of
# non-zeros, so the band thickens by one pixel vertically only. RITnet and the
# published dataset have this quirk; kept for bit-exactness. Spelled out as a (2, 1)
# array: a 1-D np.array((3, 3)) reaches OpenCV 5 as a 1x2 *row* and widens sideways.
_RITNET_DILATE_KERNEL = np.array([[3], [3]], dtype=np.uint8)


def pupil_mask(raw_label: np.ndarray, pupil_class: int = PUPIL_CLASS) -> np.ndarray:
    """Return the uint8 0/1 mask of pixels whose raw OpenEDS class is ``pupil_class``.

    Shape:
        raw_label: (H, W) any integer dtype, classes 0..3 -> (H, W) uint8
    """
    check_array(raw_label, "raw_label")
    if not np.issubdtype(raw_label.dtype, np.integer):
        raise TypeError(f"raw_label must have an integer dtype, got {raw_label.dtype.name}")
    return (raw_label == pupil_class).astype(np.uint8)


def spatial_weights(mask: np.ndarray, edge_weight: float = EDGE_WEIGHT) -> np.ndarray:
    """Return float32 weights: ``edge_weight`` on a band around the mask boundary, 0 elsewhere.

    The band is ``cv2.Canny(mask * 255, 0, 3)`` dilated once with RITnet's (3, 3)
    argument, which OpenCV treats as a 2x1 vertical kernel (see module comment).

    Shape:
        mask: (H, W) uint8 0/1 -> (H, W) float32 with values {0, edge_weight}
    """
    check_array(mask, "mask", dtype=np.uint8)
    edges = cv2.Canny(mask * np.uint8(255), 0, 3)
    band = cv2.dilate(edges, _RITNET_DILATE_KERNEL, iterations=1)
    # (band / 255) * 20 in float64 gives exactly {0, 20}: cast once at the end.
    return ((band > 0) * np.float32(edge_weight)).astype(np.float32)
