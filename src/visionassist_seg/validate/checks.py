"""Per-row value checks: numpy arrays in, a problem description (or None) out.

Each function inspects one dataset row and returns None when the row is right, or one
sentence saying what is wrong and where (first offending pixel as ``(y, x)``).
"""

from __future__ import annotations

import numpy as np

from visionassist_seg.ops.labels import EDGE_WEIGHT

# Canny marks a pixel next to the 0/1 transition and RITnet's dilation adds one pixel
# vertically, so every weighted pixel lies within two pixels of the label boundary.
BOUNDARY_RADIUS = 2


def _first(where: np.ndarray) -> tuple[int, ...]:
    """Return the index of the first True element of ``where``."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(where)), where.shape))


def boundary_band(label: np.ndarray, radius: int = BOUNDARY_RADIUS) -> np.ndarray:
    """Return a bool mask of the pixels within ``radius`` pixels (Chebyshev) of the label boundary.

    A boundary pixel has a 4-neighbour of the other class; both sides of the transition count.

    Shape:
        label: (H, W) 0/1 -> (H, W) bool
    """
    import cv2

    mask = label.astype(bool)
    edge = np.zeros(mask.shape, dtype=np.uint8)
    horizontal = mask[:, 1:] != mask[:, :-1]
    vertical = mask[1:, :] != mask[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), dtype=np.uint8)
    return cv2.dilate(edge, kernel).astype(bool)


def label_problem(label: np.ndarray) -> str | None:
    """Return why ``label`` is not a 0/1 pupil mask, or None.

    Shape:
        label: (H, W) integer
    """
    bad = (label != 0) & (label != 1)
    if not bad.any():
        return None
    values = np.unique(label[bad])
    shown = ", ".join(str(v) for v in values[:5].tolist())
    return f"label has {int(bad.sum())} pixels outside {{0, 1}} (values {shown}; first at {_first(bad)})"


def weights_problem(weights: np.ndarray, label: np.ndarray) -> str | None:
    """Return why ``weights`` are not {0, 20} on a band around the label boundary, or None.

    Shape:
        weights: (H, W) float; label: (H, W) 0/1
    """
    bad = (weights != 0) & (weights != EDGE_WEIGHT)
    if bad.any():
        at = _first(bad)
        return (
            f"spatial_weights has {int(bad.sum())} values outside {{0, 20}} "
            f"(first at {at}: {float(weights[at])!r})"
        )
    stray = (weights != 0) & ~boundary_band(label)
    if stray.any():
        return (
            f"spatial_weights is non-zero at {int(stray.sum())} pixels more than {BOUNDARY_RADIUS} px "
            f"from the label boundary (first at {_first(stray)})"
        )
    return None


def _sign_problem(channel: np.ndarray, inside: np.ndarray, name: str) -> str | None:
    """Return why ``channel`` is not <= 0 exactly on ``inside`` and > 0 elsewhere, or None."""
    positive_inside = inside & (channel > 0)
    not_positive_outside = ~inside & (channel <= 0)
    count = int(positive_inside.sum()) + int(not_positive_outside.sum())
    if count == 0:
        return None
    wrong = positive_inside | not_positive_outside
    at = _first(wrong)
    return (
        f"dist_map {name} channel has the wrong sign at {count} pixels "
        f"(<= 0 expected exactly on {name} pixels; first at {at}: {float(channel[at])!r})"
    )


def dist_map_problem(dist_map: np.ndarray, label: np.ndarray) -> str | None:
    """Return why ``dist_map`` is not the signed distance map of ``label``, or None.

    Checks: every |value| <= 1 (NaN fails); the pupil channel is <= 0 exactly on pupil
    pixels and > 0 elsewhere when the label has a pupil, all zero when it has none; the
    background channel likewise for background pixels when both classes occur, and <= 0
    everywhere when there is no pupil.

    Shape:
        dist_map: (2, H, W) float; label: (H, W) 0/1
    """
    out_of_range = ~(np.abs(dist_map) <= 1)
    if out_of_range.any():
        at = _first(out_of_range)
        return (
            f"dist_map has {int(out_of_range.sum())} values with |value| > 1 or not finite "
            f"(first at {at}: {float(dist_map[at])!r})"
        )
    pupil = label == 1
    if not pupil.any():
        if dist_map[1].any():
            at = _first(dist_map[1] != 0)
            return f"dist_map pupil channel is not all zero though the label has no pupil (first at {at})"
        if (dist_map[0] > 0).any():
            at = _first(dist_map[0] > 0)
            return f"dist_map background channel is > 0 though every pixel is background (first at {at})"
        return None
    problem = _sign_problem(dist_map[1], pupil, "pupil")
    if problem is None and not pupil.all():
        problem = _sign_problem(dist_map[0], ~pupil, "background")
    return problem


def image_problem(image: np.ndarray) -> str | None:
    """Return why ``image`` is unusable (constant), or None.

    Shape:
        image: (H, W)
    """
    low, high = image.min(), image.max()
    if low == high:
        return f"image is constant (every pixel is {low.item()})"
    return None
