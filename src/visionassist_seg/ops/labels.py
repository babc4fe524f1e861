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
# Canny marks only pixels next to a change of the mask (3x3 Sobel, then a 3x3 non-maximum
# suppression) and the dilation reaches one row further: every edge and band pixel lies
# within 2 pixels of the mask's non-zero box, so a 3-pixel margin holds them all.
_EDGE_MARGIN = 3


def pupil_mask(raw_label: np.ndarray, pupil_class: int = PUPIL_CLASS) -> np.ndarray:
    """Return the uint8 0/1 mask of pixels whose raw OpenEDS class is ``pupil_class``.

    Shape:
        raw_label: (H, W) any integer dtype, classes 0..3 -> (H, W) uint8
    """
    check_array(raw_label, "raw_label")
    if not np.issubdtype(raw_label.dtype, np.integer):
        raise TypeError(f"raw_label must have an integer dtype, got {raw_label.dtype.name}")
    mask = np.empty(raw_label.shape, dtype=np.uint8)
    np.equal(raw_label, pupil_class, out=mask.view(np.bool_))  # 0/1 bytes in one pass
    return mask


def nonzero_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice] | None:
    """Return the (rows, cols) slices of the box around ``mask``'s non-zero pixels, grown by ``margin``.

    The box is clipped to the image; None when ``mask`` has no non-zero pixel.

    Shape:
        mask: (H, W) uint8 or bool
    """
    x, y, width, height = cv2.boundingRect(mask.view(np.uint8))
    if width == 0:
        return None
    return (
        slice(max(y - margin, 0), min(y + height + margin, mask.shape[0])),
        slice(max(x - margin, 0), min(x + width + margin, mask.shape[1])),
    )


def spatial_weights(mask: np.ndarray, edge_weight: float = EDGE_WEIGHT) -> np.ndarray:
    """Return float32 weights: ``edge_weight`` on a band around the mask boundary, 0 elsewhere.

    The band is ``cv2.Canny(mask * 255, 0, 3)`` dilated once with RITnet's (3, 3)
    argument, which OpenCV treats as a 2x1 vertical kernel (see module comment).

    Shape:
        mask: (H, W) uint8 0/1 -> (H, W) float32 with values {0, edge_weight}
    """
    check_array(mask, "mask", dtype=np.uint8)
    weights = np.zeros(mask.shape, dtype=np.float32)
    box = nonzero_box(mask, _EDGE_MARGIN)
    if box is None:
        return weights
    # Only the box around the mask can hold edges (see _EDGE_MARGIN); outside it, and
    # at its cut sides, the image is zero either way, so the cropped result is the same.
    edges = cv2.Canny(mask[box] * np.uint8(255), 0, 3)
    band = cv2.dilate(edges, _RITNET_DILATE_KERNEL, iterations=1)
    # (band / 255) * 20 in float64 gives exactly {0, 20}, which float32 holds exactly.
    weights[box][band > 0] = edge_weight
    return weights
