"""Literal reference implementations, hand-made pupil masks and hypothesis strategies for the ops tests."""

from __future__ import annotations

import cv2
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.ndimage import distance_transform_edt

SMALL = (40, 64)


def reference_distance_maps(mask: np.ndarray) -> np.ndarray:
    """The published formula, literally: four scipy transforms, one pair per class."""
    height, width = mask.shape
    maps = np.zeros((2, height, width), dtype=np.float32)
    for c in (0, 1):
        pos = mask == c
        if pos.any():
            neg = ~pos
            d = distance_transform_edt(neg) * neg - (distance_transform_edt(pos) - 1) * pos
            maps[c] = d / np.sqrt((height - 1) ** 2 + (width - 1) ** 2)
    return maps


def reference_spatial_weights(mask: np.ndarray) -> np.ndarray:
    """RITnet's code, literally (including the (3, 3) tuple handed to cv2.dilate)."""
    edges = cv2.Canny((mask * 255).astype(np.uint8), 0, 3) / 255
    return (cv2.dilate(edges, (3, 3), iterations=1) * 20).astype(np.float32)


def reference_enhance(image: np.ndarray) -> np.ndarray:
    """The published image steps, literally: gamma 0.8 table through cv2.LUT, then CLAHE(1.5, 8x8)."""
    table = (255.0 * np.linspace(0, 1, 256) ** 0.8).astype(np.uint8)
    return cv2.createCLAHE(clipLimit=1.5, tileGridSize=(8, 8)).apply(cv2.LUT(image, table))


def disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    """Return a uint8 0/1 mask of the pixels within ``radius`` of ``centre`` = (row, col)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) <= radius**2).astype(np.uint8)


def random_blobs(shape: tuple[int, int], seed: int, count: int = 3) -> np.ndarray:
    """Return the union of ``count`` random ellipses (deterministic per seed)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    mask = np.zeros(shape, dtype=bool)
    for _ in range(count):
        r0, c0 = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        a, b = rng.uniform(1, shape[0] / 3), rng.uniform(1, shape[1] / 3)
        mask |= ((rows - r0) / a) ** 2 + ((cols - c0) / b) ** 2 <= 1
    return mask.astype(np.uint8)


def mask_cases(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Return named masks covering the cases the preprocessing must get right."""
    height, width = shape
    radius = min(shape) / 4
    few = np.zeros(shape, np.uint8)
    few[2, 3] = few[height // 2, width // 2] = few[height - 3, width - 5] = 1
    few[5:7, 10:12] = 1
    single = np.zeros(shape, np.uint8)
    single[height // 3, width // 3] = 1
    corner_pixel = np.zeros(shape, np.uint8)
    corner_pixel[0, 0] = 1
    return {
        "random_blobs": random_blobs(shape, seed=1),
        "closed_eye": np.zeros(shape, np.uint8),
        "all_pupil": np.ones(shape, np.uint8),
        "border_top": disc(shape, (0, width / 2), radius),
        "border_bottom": disc(shape, (height - 1, width / 2), radius),
        "border_left": disc(shape, (height / 2, 0), radius),
        "border_right": disc(shape, (height / 2, width - 1), radius),
        "border_corner": disc(shape, (height - 1, width - 1), radius),
        "single_pixel": single,
        "single_pixel_corner": corner_pixel,
        "few_pixels": few,
        "two_blobs": disc(shape, (height / 2, width / 4), radius / 2) | disc(shape, (height / 2, 3 * width / 4), radius / 2),
        "all_but_one_pixel": 1 - single,
    }


@st.composite
def blob_masks(draw, shape: tuple[int, int] = SMALL) -> np.ndarray:
    """Draw a mask made of a few ellipses, so it has large interiors as well as edges."""
    return random_blobs(shape, seed=draw(st.integers(0, 2**32 - 1)), count=draw(st.integers(0, 4)))


def noise_masks(max_side: int = 24) -> st.SearchStrategy[np.ndarray]:
    """Draw arbitrary 0/1 masks of any shape with at least two pixels (a 1x1 image has no diagonal)."""
    shapes = hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=max_side)
    return shapes.flatmap(lambda shape: hnp.arrays(np.uint8, shape, elements=st.integers(0, 1)))


def any_masks() -> st.SearchStrategy[np.ndarray]:
    """Draw noise masks of varied shapes or 40x64 blob masks."""
    return st.one_of(noise_masks(), blob_masks())
