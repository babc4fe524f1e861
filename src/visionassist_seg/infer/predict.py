"""`vaseg predict`: pupil rows (centre, ellipse, area, confidence) for images, folders and videos, in batches.

`plan_inputs` lists the frames to come (for the progress bar), `run_predictions` reads,
preprocesses, segments, fits and writes them batch by batch: memory holds one batch.
A bad input is reported through ``on_notice`` and the others go on.
"""

from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from visionassist_seg.errors import VasegError
from visionassist_seg.infer.frames import Placement, mask_to_frame, prepare_frame
from visionassist_seg.infer.geometry import fit_pupil, pupil_mask
from visionassist_seg.infer.overlay import draw_prediction
from visionassist_seg.infer.sources import BadInput, Source, expand_inputs, frame_count, frame_rate, read_frames
from visionassist_seg.ops.sample import HEIGHT, WIDTH

ROW_FIELDS = ("source", "frame", "pupil", "center_x", "center_y", "axes", "angle", "area", "confidence")
OUTPUT_SUFFIXES = (".jsonl", ".csv")
VIDEO_OVERLAY_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}
STAGES = ("read", "preprocess", "inference", "fit", "write")


@dataclass
class InputPlan:
    """The sources to read, the inputs already known to be bad, and the frame count the containers state."""

    sources: list[Source]
    failed: list[BadInput]
    total: int


@dataclass
class PredictSummary:
    """What a prediction run did: frames written, inputs that failed, frames letterboxed, seconds per stage."""

    frames: int = 0
    pupils: int = 0
    letterboxed: int = 0
    failed: list[BadInput] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


@dataclass
class _Frame:
    source: Source
    index: int
    grey: np.ndarray
    canvas: np.ndarray | None = None
    placement: Placement | None = None


def check_output(path: Path) -> None:
    """Raise a usage error unless ``path`` ends in .jsonl or .csv."""
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise VasegError(f"--output {path} must end in .jsonl or .csv (the row format follows the suffix).", exit_code=2)


def plan_inputs(paths: list[Path]) -> InputPlan:
    """Return the sources named by ``paths``, the missing or empty ones, and the frames they hold."""
    sources, failed = expand_inputs(paths)
    return InputPlan(sources, failed, sum(frame_count(source) for source in sources))


def run_predictions(
    segmenter,  # OnnxSegmenter | TorchSegmenter
    plan: InputPlan,
    output: Path,
    *,
    overlay: Path | None = None,
    preprocessed: bool = False,
    batch_size: int = 1,
    on_frames: Callable[[int], None] = lambda n: None,
    on_notice: Callable[[str], None] = lambda message: None,
) -> PredictSummary:
    """Write one row per frame of ``plan``'s sources to ``output`` (.jsonl or .csv), and overlays if asked.

    Frames are read, given gamma + CLAHE unless ``preprocessed``, letterboxed to 400x640
    when they are another size, and segmented ``batch_size`` at a time.
    """
    check_output(output)
    summary = PredictSummary(failed=list(plan.failed))
    for bad in plan.failed:
        on_notice(bad.message)
    output.parent.mkdir(parents=True, exist_ok=True)
    with RowWriter(output) as rows, OverlayWriter(overlay) as overlays:
        batch: list[_Frame] = []
        for frame in _frames(plan.sources, summary, on_notice):
            _prepare(frame, preprocessed, summary, on_notice)
            batch.append(frame)
            if len(batch) == batch_size:
                _run_batch(segmenter, batch, rows, overlays, summary)
                on_frames(len(batch))
                batch = []
        if batch:
            _run_batch(segmenter, batch, rows, overlays, summary)
            on_frames(len(batch))
    return summary


def _frames(sources: list[Source], summary: PredictSummary, on_notice: Callable[[str], None]) -> Iterator[_Frame]:
    """Yield every frame of every source; a source that fails is noted and skipped."""
    for source in sources:
        frames = read_frames(source)
        while True:
            start = time.perf_counter()
            try:
                index, grey = next(frames)
            except StopIteration:
                break
            except BadInput as bad:
                summary.failed.append(bad)
                on_notice(bad.message)
                break
            finally:
                summary.seconds["read"] += time.perf_counter() - start
            yield _Frame(source, index, grey)


def _prepare(frame: _Frame, preprocessed: bool, summary: PredictSummary, on_notice: Callable[[str], None]) -> None:
    start = time.perf_counter()
    frame.canvas, frame.placement = prepare_frame(frame.grey, enhance=not preprocessed)
    summary.seconds["preprocess"] += time.perf_counter() - start
    if frame.placement.resized:
        if summary.letterboxed == 0:
            height, width = frame.grey.shape
            on_notice(
                f"{frame.source.name} is {width}x{height}, not {WIDTH}x{HEIGHT}: such frames are resized keeping "
                "their aspect ratio and padded for the model, and every result is given in the frame's own pixels."
            )
        summary.letterboxed += 1


def _run_batch(segmenter, batch: list[_Frame], rows: "RowWriter", overlays: "OverlayWriter", summary: PredictSummary) -> None:
    start = time.perf_counter()
    logits = segmenter.logits(np.stack([frame.canvas for frame in batch]))
    summary.seconds["inference"] += time.perf_counter() - start
    for frame, frame_logits in zip(batch, logits):
        start = time.perf_counter()
        fit = fit_pupil(frame_logits, frame.placement)
        summary.seconds["fit"] += time.perf_counter() - start
        start = time.perf_counter()
        rows.write(fit.row(frame.source.name, frame.index))
        if overlays.enabled:
            mask = mask_to_frame(pupil_mask(frame_logits), frame.placement)
            overlays.add(frame.source, frame.index, draw_prediction(frame.grey, mask, fit))
        summary.seconds["write"] += time.perf_counter() - start
        summary.frames += 1
        summary.pupils += fit.pupil


class RowWriter:
    """Writes prediction rows as JSON lines or CSV (``axes`` as a JSON list, nulls as empty cells)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("w", newline="")
        self.csv = None
        if path.suffix.lower() == ".csv":
            self.csv = csv.DictWriter(self.handle, fieldnames=ROW_FIELDS)
            self.csv.writeheader()

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, *exc_info) -> None:  # type: ignore[no-untyped-def]
        self.handle.close()

    def write(self, row: dict) -> None:
        if self.csv is None:
            self.handle.write(json.dumps(row) + "\n")
            return
        cells = {k: "" if v is None else v for k, v in row.items()}
        if row["axes"] is not None:
            cells["axes"] = json.dumps(row["axes"])
        self.csv.writerow(cells)


class OverlayWriter:
    """Writes overlay frames: a PNG per image and a video per video into a folder, or every frame into one video file.

    One video file takes the frame rate of the first input (30 when that is an image)
    and the first frame's size; frames of another size are resized to it.
    """

    def __init__(self, target: Path | None) -> None:
        self.target = target
        self.enabled = target is not None
        self.single = target is not None and target.suffix.lower() in VIDEO_OVERLAY_CODECS
        self.videos: dict[Source, cv2.VideoWriter] = {}
        self.used_names: dict[str, int] = defaultdict(int)
        if self.enabled:
            (target.parent if self.single else target).mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> "OverlayWriter":
        return self

    def __exit__(self, *exc_info) -> None:  # type: ignore[no-untyped-def]
        for writer in self.videos.values():
            writer.release()
        self.videos.clear()

    def add(self, source: Source, index: int, image: np.ndarray) -> None:
        """Write one overlay frame of ``source``."""
        if self.single:
            if not self.videos:
                self.size = (image.shape[1], image.shape[0])
                self._open_video(source, self.target, self.size)
            if (image.shape[1], image.shape[0]) != self.size:
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
            next(iter(self.videos.values())).write(image)
        elif source.is_video:
            if source not in self.videos:
                self._open_video(source, self._unique(source, ".mp4"), (image.shape[1], image.shape[0]))
            self.videos[source].write(image)
        else:
            path = self._unique(source, ".png")
            if not cv2.imwrite(str(path), image):
                raise VasegError(f"Cannot write overlay {path}. Check that --overlay {self.target} is a writable folder.")

    def _unique(self, source: Source, suffix: str) -> Path:
        stem = source.path.stem
        self.used_names[stem] += 1
        count = self.used_names[stem]
        return self.target / (f"{stem}{suffix}" if count == 1 else f"{stem}-{count}{suffix}")

    def _open_video(self, source: Source, path: Path, size: tuple[int, int]) -> None:
        codec = VIDEO_OVERLAY_CODECS.get(path.suffix.lower(), "mp4v")
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), frame_rate(source), size)
        if not writer.isOpened():
            raise VasegError(f"OpenCV cannot write the overlay video {path} (codec {codec}). Pass --overlay a folder or an .avi file.")
        self.videos[source] = writer
