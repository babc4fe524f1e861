"""The composition of every step into one preprocessed sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visionassist_seg.ops.check import check_array
from visionassist_seg.ops.distance import distance_maps
from visionassist_seg.ops.intensity import CLAHE_CLIP_LIMIT, GAMMA, enhance_image
from visionassist_seg.ops.labels import EDGE_WEIGHT, PUPIL_CLASS, pupil_mask, spatial_weights

HEIGHT = 400
WIDTH = 640
NUM_RAW_CLASSES = 4


@dataclass(frozen=True)
class PreprocessedSample:
    """One row of the precomputed dataset (without its filename).

    Shapes: image (H, W) uint8; label (H, W) uint8 0/1; spatial_weights (H, W)
    float32 {0, 20}; dist_map (2, H, W) float32.
    """

    image: np.ndarray
    label: np.ndarray
    spatial_weights: np.ndarray
    dist_map: np.ndarray


def check_raw_pair(image: np.ndarray, raw_label: np.ndarray, shape: tuple[int, int] = (HEIGHT, WIDTH)) -> None:
    """Raise ValueError naming the problem when a raw image/label pair is unusable.

    Checks: image is 2-D uint8 of ``shape``; label is 2-D integer of ``shape`` with
    classes in 0..3. A wrong-shaped label is rejected, never resized or tiled.

    Raises:
        TypeError: ``image`` or ``raw_label`` is not a numpy array.
        ValueError: any other check fails; the message quotes the offending value.
    """
    check_array(image, "image")
    check_array(raw_label, "label")
    if image.dtype != np.uint8:
        raise ValueError(f"image dtype is {image.dtype.name}, expected uint8")
    if image.shape != shape:
        raise ValueError(f"image shape is {image.shape[0]}x{image.shape[1]}, expected {shape[0]}x{shape[1]}")
    if not np.issubdtype(raw_label.dtype, np.integer):
        raise ValueError(f"label dtype is {raw_label.dtype.name}, expected an integer type")
    if raw_label.shape != shape:
        raise ValueError(f"label shape is {raw_label.shape}, expected {shape}")
    # One pass instead of min and max: seen as unsigned, a negative value is huge.
    unsigned = raw_label.view(raw_label.dtype.str.replace("i", "u"))
    if int(unsigned.max()) >= NUM_RAW_CLASSES:
        low, high = int(raw_label.min()), int(raw_label.max())
        raise ValueError(f"label values span {low}..{high}, expected classes 0..{NUM_RAW_CLASSES - 1}")


def preprocess_sample(
    image: np.ndarray,
    raw_label: np.ndarray,
    *,
    gamma: float = GAMMA,
    clip_limit: float = CLAHE_CLIP_LIMIT,
    pupil_class: int = PUPIL_CLASS,
    edge_weight: float = EDGE_WEIGHT,
    shape: tuple[int, int] = (HEIGHT, WIDTH),
) -> PreprocessedSample:
    """Return the published preprocessing of one raw image and its 4-class label.

    Raises:
        ValueError: the pair fails `check_raw_pair` (wrong size, dtype or classes).

    Shape:
        image: (H, W) uint8; raw_label: (H, W) integer -> `PreprocessedSample`
    """
    check_raw_pair(image, raw_label, shape)
    mask = pupil_mask(raw_label, pupil_class)
    return PreprocessedSample(
        image=enhance_image(image, gamma, clip_limit),
        label=mask,
        spatial_weights=spatial_weights(mask, edge_weight),
        dist_map=distance_maps(mask),
    )
