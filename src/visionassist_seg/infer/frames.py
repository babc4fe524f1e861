"""Frames onto the model's 400x640 canvas (grey, gamma + CLAHE, letterboxed) and canvas pixels back to the frame."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from visionassist_seg.ops.intensity import enhance_image
from visionassist_seg.ops.sample import HEIGHT, WIDTH


@dataclass(frozen=True)
class Placement:
    """Where a frame of ``frame_height`` x ``frame_width`` sits on the 400x640 canvas: the window it was resized into."""

    frame_height: int
    frame_width: int
    top: int
    left: int
    height: int
    width: int

    @property
    def resized(self) -> bool:
        """Whether the frame is not 400x640 (letterboxed onto the canvas)."""
        return (self.frame_height, self.frame_width) != (HEIGHT, WIDTH)

    @property
    def window(self) -> tuple[slice, slice]:
        """Return the (rows, columns) slices of the canvas that hold the frame."""
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    @property
    def pixel_area(self) -> float:
        """Return how many frame pixels one canvas pixel of the window covers."""
        return (self.frame_width / self.width) * (self.frame_height / self.height)

    def window_to_frame(self, points: np.ndarray) -> np.ndarray:
        """Return (x, y) points given in window pixels in the frame's own pixels.

        Pixel centres map onto pixel centres, as ``cv2.resize`` does: x_frame = (x + 0.5) * sx - 0.5.

        Shape:
            points: (K, 2) float -> (K, 2) float64
        """
        scale = np.array([self.frame_width / self.width, self.frame_height / self.height])
        return (np.asarray(points, dtype=np.float64) + 0.5) * scale - 0.5


def place(frame_height: int, frame_width: int) -> Placement:
    """Return the largest centred window of the 400x640 canvas with the frame's aspect ratio."""
    scale = min(HEIGHT / frame_height, WIDTH / frame_width)
    height = min(HEIGHT, max(1, round(frame_height * scale)))
    width = min(WIDTH, max(1, round(frame_width * scale)))
    return Placement(frame_height, frame_width, (HEIGHT - height) // 2, (WIDTH - width) // 2, height, width)


def to_grey(image: np.ndarray) -> np.ndarray:
    """Return a uint8 grey image from a grey, BGR or BGRA frame (16-bit frames keep their top 8 bits).

    Shape:
        image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> (H, W) uint8
    """
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"pixel type {image.dtype} (expected 8- or 16-bit)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    if image.ndim != 2:
        raise ValueError(f"array shape {image.shape} (expected an image)")
    return image


def prepare_frame(grey: np.ndarray, *, enhance: bool = True) -> tuple[np.ndarray, Placement]:
    """Return the 400x640 model input for a grey frame, and where the frame sits on it.

    A frame of another size is resized keeping its aspect ratio and centred; the rest of
    the canvas is filled with the frame's mean grey (a black band would look like pupil
    to the model). Gamma + CLAHE run on the resized frame before padding, so the padding
    does not enter CLAHE's histograms.

    Shape:
        grey: (H, W) uint8 -> canvas (400, 640) uint8
    """
    placement = place(*grey.shape)
    if placement.resized:
        shrink = placement.height < grey.shape[0]
        grey = cv2.resize(
            grey, (placement.width, placement.height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
    content = enhance_image(np.ascontiguousarray(grey)) if enhance else grey
    if not placement.resized:
        return content, placement
    canvas = np.full((HEIGHT, WIDTH), int(round(cv2.mean(content)[0])), np.uint8)
    canvas[placement.window] = content
    return canvas, placement


def mask_to_frame(mask: np.ndarray, placement: Placement) -> np.ndarray:
    """Return a canvas mask cut to the frame's window and resized (nearest) to the frame's own size.

    Shape:
        mask: (400, 640) bool or uint8 -> (frame_height, frame_width) same dtype
    """
    window = mask[placement.window]
    if not placement.resized:
        return window
    size = (placement.frame_width, placement.frame_height)
    return cv2.resize(window.view(np.uint8), size, interpolation=cv2.INTER_NEAREST).view(mask.dtype)
