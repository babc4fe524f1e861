"""Image intensity steps: gamma correction and CLAHE (REFERENCE.md section 2)."""

from __future__ import annotations

import functools

import cv2
import numpy as np

from visionassist_seg.ops.check import check_array

GAMMA = 0.8
CLAHE_CLIP_LIMIT = 1.5
CLAHE_TILE_GRID = (8, 8)


@functools.lru_cache(maxsize=16)
def gamma_table(gamma: float = GAMMA) -> np.ndarray:
    """Return the 256-entry uint8 lookup table ``uint8(255 * linspace(0, 1, 256) ** gamma)``.

    The cast truncates (as the published pipeline does), it does not round. The table is
    cached per ``gamma`` and read-only (it is shared between calls).
    """
    table = (255.0 * np.linspace(0, 1, 256) ** gamma).astype(np.uint8)
    table.setflags(write=False)
    return table


def gamma_correct(image: np.ndarray, gamma: float = GAMMA) -> np.ndarray:
    """Return ``image`` with the gamma lookup table applied through ``cv2.LUT``.

    Shape:
        image: (H, W) uint8 -> (H, W) uint8
    """
    check_array(image, "image", dtype=np.uint8)
    return cv2.LUT(image, gamma_table(gamma))


def apply_clahe(
    image: np.ndarray, clip_limit: float = CLAHE_CLIP_LIMIT, tile_grid: tuple[int, int] = CLAHE_TILE_GRID
) -> np.ndarray:
    """Return ``image`` after contrast-limited adaptive histogram equalisation.

    Shape:
        image: (H, W) uint8 -> (H, W) uint8
    """
    check_array(image, "image", dtype=np.uint8)
    return cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=tile_grid).apply(image)


def enhance_image(image: np.ndarray, gamma: float = GAMMA, clip_limit: float = CLAHE_CLIP_LIMIT) -> np.ndarray:
    """Return the published image preprocessing: gamma correction, then CLAHE.

    Shape:
        image: (H, W) uint8 -> (H, W) uint8
    """
    return apply_clahe(gamma_correct(image, gamma), clip_limit)
