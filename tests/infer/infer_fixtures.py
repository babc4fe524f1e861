"""Tiny models and frames for the inference tests: ONNX stubs in both layouts, synthetic eyes with a known pupil."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from visionassist_seg.ops.sample import HEIGHT, WIDTH

THRESHOLD = 60.0


class DarkIsPupil(nn.Module):
    """A stub segmenter: pupil wherever the canvas is darker than `THRESHOLD` (logit margin = distance to it)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([image - THRESHOLD, THRESHOLD - image], dim=1)


class LegacyLayout(nn.Module):
    """The live demo's contract around a standard model: takes normalised, transposed frames and returns transposed logits."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = (x * 0.5 + 0.5) * 255.0  # undo (x / 255 - 0.5) / 0.5
        return self.inner(image.transpose(2, 3)).transpose(2, 3)


def export(module: nn.Module, path: Path, *, legacy: bool = False, input_shape=None, names=None) -> Path:
    """Write ``module`` as ONNX (TorchScript exporter) in the standard or legacy layout, dynamic batch."""
    shape = input_shape or ((1, 1, WIDTH, HEIGHT) if legacy else (1, 1, HEIGHT, WIDTH))
    in_name, out_name = names or (("input", "output") if legacy else ("image", "logits"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), (torch.zeros(shape),), str(path), input_names=[in_name], output_names=[out_name],
            dynamic_axes={in_name: {0: "batch"}, out_name: {0: "batch"}}, opset_version=17, dynamo=False,
        )  # fmt: skip
    return path


def eye(height: int = HEIGHT, width: int = WIDTH, center=(320.0, 200.0), radius: float = 30.0, *, pupil: bool = True, seed: int = 0) -> np.ndarray:
    """Return a grey frame: bright noisy background, a mid-grey iris and (optionally) a dark pupil disc at ``center``."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    r = np.hypot(xs - center[0], ys - center[1])
    frame = np.full((height, width), 190.0) + rng.normal(0, 4, (height, width))
    frame[r < radius * 2.5] = 120.0
    if pupil:
        frame[r < radius] = 15.0
    return np.clip(frame, 0, 255).astype(np.uint8)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Write grey frames as an MJPG AVI (readable by every OpenCV build)."""
    height, width = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path
