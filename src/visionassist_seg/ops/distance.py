"""Signed distance maps for the surface loss (REFERENCE.md section 2)."""

from __future__ import annotations

import cv2
import numpy as np

from visionassist_seg.ops.check import check_array
from visionassist_seg.ops.labels import nonzero_box


def exact_edt(nonzero: np.ndarray) -> np.ndarray:
    """Return the Euclidean distance from each True pixel to the nearest False pixel, as scipy gives it.

    ``cv2.distanceTransform`` (DIST_MASK_PRECISE) is an exact EDT and several times faster
    than scipy's, but it works in float32 and its last bits depend on OpenCV's thread
    count. Squared distances between pixels are integers and its error is about 2e-6 px,
    so rounding the square recovers the exact integer; its float64 square root is then
    bit-identical to ``scipy.ndimage.distance_transform_edt`` and independent of threads.
    Needs at least one False pixel.

    Shape:
        nonzero: (H, W) bool -> (H, W) float64
    """
    distance = cv2.distanceTransform(nonzero.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    np.multiply(distance, distance, out=distance)
    np.rint(distance, out=distance)
    squared = distance.astype(np.float64)
    # numpy's square root is correctly rounded (IEEE 754), as scipy's is.
    return np.sqrt(squared, out=squared)


def _edt_all_true(shape: tuple[int, int]) -> np.ndarray:
    """Return what ``scipy.ndimage.distance_transform_edt`` gives for an all-True mask.

    scipy measures such a mask against a virtual zero at row -1, column 0, so pixel
    (r, c) gets ``sqrt((r + 1)**2 + c**2)``. The published maps for closed eyes carry
    this quirk; cv2 returns about 1.8e19 there instead, hence the special case.
    """
    rows = np.arange(1, shape[0] + 1, dtype=np.float64)[:, None]
    cols = np.arange(shape[1], dtype=np.float64)[None, :]
    return np.sqrt(rows * rows + cols * cols)


def distance_maps(mask: np.ndarray) -> np.ndarray:
    """Return the normalised signed distance map of each class (0 background, 1 pupil).

    For class c with ``pos = mask == c``: ``edt(~pos) * ~pos - (edt(pos) - 1) * pos``,
    divided by the image diagonal ``sqrt((H-1)**2 + (W-1)**2)``; all zeros when the
    class is absent. Positive outside the class, <= 0 inside, exactly 0 on the inner
    boundary. Bit-identical to the scipy formula; two transforms serve both channels
    (the reference computes four).

    Shape:
        mask: (H, W) uint8 0/1 -> (2, H, W) float32
    """
    check_array(mask, "mask", dtype=np.uint8)
    height, width = mask.shape
    diagonal = np.sqrt((height - 1) ** 2 + (width - 1) ** 2)
    pupil = mask == 1
    # The pupil's bounding box grown by one pixel: its ring is all background.
    box = nonzero_box(pupil, margin=1)
    if box is None or pupil.all():
        maps = np.zeros((2, height, width), dtype=np.float32)
        present = 0 if box is None else 1
        maps[present] = (1.0 - _edt_all_true((height, width))) / diagonal
        return maps
    # Every value is written below: no need to zero the output first.
    maps = np.empty((2, height, width), dtype=np.float32)
    # Background pixels: channel 1 is edt(~pupil), channel 0 is 1 - edt(~pupil). The
    # pupil's own distances only need its bounding box plus a one-pixel ring, which is
    # all background: clamping any farther background pixel onto the ring gets closer,
    # so the cropped transform is exact and costs a fraction of a full one.
    to_pupil = exact_edt(~pupil)
    np.divide(to_pupil, diagonal, out=maps[1], casting="unsafe")
    np.subtract(1.0, to_pupil, out=to_pupil)
    np.divide(to_pupil, diagonal, out=maps[0], casting="unsafe")
    inside = pupil[box]
    to_background = exact_edt(np.ascontiguousarray(inside))[inside]
    # Same float64 operations as the formula, so every bit (and the sign of zero) matches.
    maps[0][box][inside] = to_background / diagonal
    maps[1][box][inside] = (1.0 - to_background) / diagonal
    return maps
