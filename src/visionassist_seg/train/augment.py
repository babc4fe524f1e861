"""Train-time augmentation (REFERENCE.md section 4), driven by a seeded numpy Generator.

Geometry (the horizontal flip) moves image, label, spatial weights and distance maps
together; photometric steps (lines, blur) touch the image only. Pixel sizes are given
at 400x640 and scaled with ``scale`` so a reduced-resolution run sees the same
augmentation, only smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FLIP_P = 0.5
LINES_P = 0.2
BLUR_P = 0.2
MAX_LINES = 9
LINE_THICKNESS = 4
BLUR_KERNEL = 7
BLUR_SIGMA = (2.0, 6.0)


@dataclass
class Sample:
    """One training sample as numpy arrays.

    Shapes: image (H, W) uint8; label (H, W) uint8; spatial_weights (H, W) float32;
    dist_map (2, H, W) float32.
    """

    image: np.ndarray
    label: np.ndarray
    spatial_weights: np.ndarray
    dist_map: np.ndarray


def hflip(sample: Sample) -> Sample:
    """Return ``sample`` mirrored left-right, every array with it (views, no copy)."""
    return Sample(
        image=sample.image[:, ::-1],
        label=sample.label[:, ::-1],
        spatial_weights=sample.spatial_weights[:, ::-1],
        dist_map=sample.dist_map[:, :, ::-1],
    )


def draw_lines(image: np.ndarray, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Return a copy of ``image`` with 1-9 white lines through a point near the centre.

    As RITnet: the lines pass through a point in the central 30-70 % of the frame,
    run 0-50 px to one side and 50-200 px to the other, 4 px thick (all times ``scale``).

    Shape:
        image: (H, W) uint8 -> (H, W) uint8
    """
    height, width = image.shape
    out = np.ascontiguousarray(image).copy()
    yc = (0.3 + 0.4 * rng.random()) * height
    xc = (0.3 + 0.4 * rng.random()) * width
    thickness = max(1, round(LINE_THICKNESS * scale))
    # Clip the end points: a near-vertical line has a huge tan(theta), and cv2 needs int32.
    limit = 4 * max(height, width)
    for _ in range(int(rng.integers(1, MAX_LINES + 1))):
        theta = np.pi * rng.random()
        near = 50 * scale * rng.random() * (1 if rng.random() < 0.5 else -1)
        far = (150 * rng.random() + 50) * scale * (1 if rng.random() < 0.5 else -1)
        points = []
        for offset in (near, far):
            x = xc - offset
            y = (x - xc) * np.tan(theta) + yc
            points.append((int(np.clip(x, -limit, limit)), int(np.clip(y, -limit, limit))))
        cv2.line(out, points[0], points[1], 255, thickness)
    return out


def gaussian_blur(image: np.ndarray, sigma: float, scale: float = 1.0) -> np.ndarray:
    """Return ``image`` blurred by a Gaussian of ``sigma`` px (7x7 kernel at full scale).

    Shape:
        image: (H, W) uint8 -> (H, W) uint8
    """
    kernel = max(3, int(round(BLUR_KERNEL * scale)) | 1)
    return cv2.GaussianBlur(np.ascontiguousarray(image), (kernel, kernel), sigma * scale)


def augment(sample: Sample, rng: np.random.Generator, scale: float = 1.0) -> Sample:
    """Return the augmented sample: flip p=0.5, lines p=0.2, blur p=0.2 (in that order).

    The result depends only on ``sample`` and the state of ``rng``, so a seeded
    generator makes a run reproducible.
    """
    flip, lines, blur = rng.random(3)
    sigma = rng.uniform(*BLUR_SIGMA)
    if flip < FLIP_P:
        sample = hflip(sample)
    image = sample.image
    if lines < LINES_P:
        image = draw_lines(image, rng, scale)
    if blur < BLUR_P:
        image = gaussian_blur(image, sigma, scale)
    return Sample(image, sample.label, sample.spatial_weights, sample.dist_map)
