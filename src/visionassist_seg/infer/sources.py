"""Predict's inputs: image files, folders of them and videos, read as grey frames; bad inputs named, not fatal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from visionassist_seg.infer.frames import to_grey

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"})
DEFAULT_FPS = 30.0  # for videos whose container does not say, and overlays made of images only


class BadInput(Exception):
    """An input that cannot be read; the message is one paragraph naming the file and the fix."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Source:
    """One image or video file to predict on."""

    path: Path
    is_video: bool

    @property
    def name(self) -> str:
        return str(self.path)


def expand_inputs(paths: list[Path]) -> tuple[list[Source], list[BadInput]]:
    """Return the image and video files named by ``paths`` (folders searched recursively, sorted) and the bad paths."""
    sources: list[Source] = []
    bad: list[BadInput] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not found:
                bad.append(BadInput(path, f"Folder {path} holds no images ({_listed(IMAGE_SUFFIXES)}) or videos ({_listed(VIDEO_SUFFIXES)}); skipped."))
            sources.extend(Source(p, p.suffix.lower() in VIDEO_SUFFIXES) for p in found)
        elif path.is_file():
            # Any other suffix is tried as a video: OpenCV reads more containers than any list here.
            sources.append(Source(path, path.suffix.lower() not in IMAGE_SUFFIXES))
        else:
            bad.append(BadInput(path, f"Input {path} does not exist; skipped. Check the path (images, folders or videos)."))
    return sources, bad


def _listed(suffixes: frozenset[str]) -> str:
    return ", ".join(sorted(suffixes))


def read_image(path: Path) -> np.ndarray:
    """Return an image file as a grey uint8 frame (colour, alpha and 16-bit images converted).

    Raises:
        BadInput: the file cannot be read or decoded.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise BadInput(path, f"Cannot read image {path}: {err.strerror or err}; skipped. Check its permissions.") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise BadInput(path, f"Image {path} cannot be decoded (empty, truncated or not an image); skipped. Re-export it as PNG, JPEG or BMP.")
    try:
        return to_grey(image)
    except ValueError as err:
        raise BadInput(path, f"Image {path} has an unsupported {err}; skipped. Save it as an 8-bit grey or colour image.") from None


def open_video(path: Path) -> cv2.VideoCapture:
    """Return an opened capture of ``path``.

    Raises:
        BadInput: OpenCV cannot open the file as a video.
    """
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise BadInput(
            path,
            f"Video {path} will not open (OpenCV cannot read this file or its codec); skipped. "
            "Convert it, e.g. `ffmpeg -i INPUT -c:v libx264 OUT.mp4`, or pass images.",
        )
    return capture


def read_frames(source: Source) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame index, grey frame) of an image (index 0) or of every frame of a video.

    Raises:
        BadInput: the file cannot be read, or a video has no readable frame.
    """
    if not source.is_video:
        yield 0, read_image(source.path)
        return
    capture = open_video(source.path)
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield index, to_grey(frame)
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise BadInput(source.path, f"Video {source.path} opened but has no readable frame; skipped. Check that the file is complete.")


def frame_count(source: Source) -> int:
    """Return the number of frames a source will give as the container states it (1 for an image; 0 if unknown)."""
    if not source.is_video:
        return 1
    capture = cv2.VideoCapture(str(source.path))
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))) if capture.isOpened() else 0
    finally:
        capture.release()


def frame_rate(source: Source) -> float:
    """Return a video's frames per second (`DEFAULT_FPS` for images or when the container does not say)."""
    if not source.is_video:
        return DEFAULT_FPS
    capture = cv2.VideoCapture(str(source.path))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    finally:
        capture.release()
    return fps if fps and fps > 0 else DEFAULT_FPS
