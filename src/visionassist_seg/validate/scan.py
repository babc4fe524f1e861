"""The parallel part of validation: hashing shards, scanning row groups, recomputing rows.

Every task is a small picklable dataclass handled by `run_task` in a worker process;
a worker holds one row group at a time, so memory stays bounded whatever the dataset size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from contextlib import nullcontext
from typing import Callable, ContextManager, Sequence, TypeVar

import numpy as np

from visionassist_seg.data.schema import COLUMNS
from visionassist_seg.errors import VasegError
from visionassist_seg.validate.checks import dist_map_problem, image_problem, label_problem, weights_problem
from visionassist_seg.validate.report import Failure
from visionassist_seg.validate.stats import SplitStatistics
from visionassist_seg.validate.structure import LEGACY_COLUMNS

SCHEMA = "schema"
VALUE_CHECKS = ("values: label", "values: spatial_weights", "values: dist_map", "values: image")
RECOMPUTE = "recompute"
DIST_MAP_TOLERANCE = 1e-6
# Rows decoded at once. pyarrow's nested-list decoding peaks at several times the data size:
# measured on 16-row row groups, 2-row batches peak at ~190 MB per worker, 16-row ones at ~470 MB,
# at the same speed.
_BATCH_ROWS = 2


@dataclass(frozen=True)
class HashTask:
    """Compute one shard's sha256."""

    relative: str
    path: Path


@dataclass(frozen=True)
class ScanTask:
    """Check every row of one row group; ``row_offset`` is its first row's index within the split."""

    split: str
    path: Path
    row_group: int
    row_offset: int
    legacy: bool


@dataclass(frozen=True)
class RecomputeTask:
    """Recompute chosen rows of one row group from the raw files under ``raw_root``."""

    split: str
    path: Path
    row_group: int
    row_offset: int
    rows: tuple[int, ...]  # indexes within the row group
    raw_root: Path
    legacy: bool


@dataclass
class ScanResult:
    """What one ScanTask found: failures, filenames and image digests in row order, and partial statistics."""

    split: str
    row_offset: int
    failures: list[Failure] = field(default_factory=list)
    filenames: list[str] = field(default_factory=list)
    image_digests: list[bytes] = field(default_factory=list)
    statistics: SplitStatistics = field(default_factory=SplitStatistics)


def run_task(task: HashTask | ScanTask | RecomputeTask):
    """Run one task in a worker; return a (relative, sha256) pair, a ScanResult or a list of Failures."""
    if isinstance(task, HashTask):
        from visionassist_seg.data.shards import sha256_file

        return task.relative, sha256_file(task.path)
    if isinstance(task, ScanTask):
        return scan_row_group(task)
    return recompute_rows(task)


def _columns(legacy: bool) -> list[str]:
    return list(LEGACY_COLUMNS if legacy else COLUMNS)


def scan_row_group(task: ScanTask) -> ScanResult:
    """Return the value-check failures, filenames and statistics of one row group."""
    from visionassist_seg.data.reader import read_batches

    result = ScanResult(task.split, task.row_offset)
    row = task.row_offset
    try:
        for batch in read_batches(task.path, _columns(task.legacy), _BATCH_ROWS, row_groups=[task.row_group]):
            names = [str(name) for name in batch["filename"]]
            for i, filename in enumerate(names):
                result.failures += _row_failures(batch, i, task.split, row + i, filename, task.legacy)
            result.filenames += names
            result.image_digests += [image_digest(image) for image in batch["image"]]
            result.statistics.add_batch(batch["image"], batch["label"])
            row += len(names)
    except (VasegError, OSError, ValueError) as err:
        result.failures.append(_unreadable(SCHEMA, task.split, task.path, task.row_group, err))
    return result


def image_digest(image: np.ndarray) -> bytes:
    """Return a 16-byte BLAKE2b digest of an image's pixels (as uint8) and shape: equal digests, equal images.

    Legacy shards store images as int64 lists; hashing the uint8 pixels makes the same
    frame compare equal whichever format holds it.
    """
    import hashlib

    pixels = np.ascontiguousarray(image, dtype=np.uint8)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(pixels.shape).encode())
    digest.update(pixels.tobytes())
    return digest.digest()


def _unreadable(check: str, split: str, path: Path, row_group: int, err: Exception) -> Failure:
    """Return the failure for a row group that cannot be decoded into arrays of the schema's shapes."""
    message = err.message if isinstance(err, VasegError) else f"{type(err).__name__}: {err}"
    return Failure(check, split, None, None, f"row group {row_group} of {path.name} is unreadable ({message})")


def _row_failures(batch: dict, i: int, split: str, row: int, filename: str, legacy: bool) -> list[Failure]:
    """Return the failures of row ``i`` of ``batch`` (global index ``row``)."""
    label = batch["label"][i]
    found = [
        ("values: label", label_problem(label)),
        ("values: spatial_weights", weights_problem(batch["spatial_weights"][i], label)),
        ("values: dist_map", dist_map_problem(batch["dist_map"][i], label)),
        ("values: image", image_problem(batch["image"][i])),
    ]
    if not legacy and batch["preprocessed"][i] is not True:
        found.append((SCHEMA, f"preprocessed is {batch['preprocessed'][i]!r}, expected True"))
    return [Failure(check, split, row, filename, message) for check, message in found if message is not None]


def recompute_rows(task: RecomputeTask) -> list[Failure]:
    """Return a Failure for each chosen row that differs from its recomputation from the raw files."""
    from visionassist_seg.data.reader import read_batches

    failures: list[Failure] = []
    wanted = set(task.rows)
    start = 0
    try:
        for batch in read_batches(task.path, _columns(task.legacy), _BATCH_ROWS, row_groups=[task.row_group]):
            count = len(batch["filename"])
            for i in sorted(r - start for r in wanted if start <= r < start + count):
                filename = str(batch["filename"][i])
                enhanced = not task.legacy and bool(batch["preprocessed"][i])
                problem = _compare_with_raw(batch, i, task.raw_root / task.split, filename, enhanced)
                if problem is not None:
                    failures.append(Failure(RECOMPUTE, task.split, task.row_offset + start + i, filename, problem))
            start += count
    except (VasegError, OSError, ValueError) as err:
        failures.append(_unreadable(RECOMPUTE, task.split, task.path, task.row_group, err))
    return failures


def _compare_with_raw(batch: dict, i: int, raw_split_dir: Path, filename: str, enhanced: bool) -> str | None:
    """Return how row ``i`` differs from the published preprocessing of its raw files, or None."""
    from visionassist_seg.data.raw import find_raw_files, read_image, read_label
    from visionassist_seg.ops import preprocess_sample

    image_path, label_path = find_raw_files(raw_split_dir, filename)  # x.PNG / x.NPY as precompute pairs them
    try:
        raw_image = read_image(image_path)
        expected = preprocess_sample(raw_image, read_label(label_path))
    except ValueError as err:
        return f"cannot recompute from {image_path} / {label_path}: {err}"
    # Legacy rows (preprocessed missing or False) hold the raw image, not gamma + CLAHE.
    want_image = expected.image if enhanced else raw_image
    problems = [
        _exact_difference("image", batch["image"][i], want_image),
        _exact_difference("label", batch["label"][i], expected.label),
        _exact_difference("spatial_weights", batch["spatial_weights"][i], expected.spatial_weights),
    ]
    worst = float(np.max(np.abs(batch["dist_map"][i].astype(np.float64) - expected.dist_map)))
    if not worst <= DIST_MAP_TOLERANCE:
        problems.append(f"dist_map differs by up to {worst:.3g} (tolerance {DIST_MAP_TOLERANCE:g})")
    found = [p for p in problems if p is not None]
    return "; ".join(found) if found else None


def _exact_difference(name: str, stored: np.ndarray, expected: np.ndarray) -> str | None:
    """Return how ``stored`` differs from ``expected`` (pixel count and largest difference), or None."""
    differs = stored.astype(np.float64) != expected.astype(np.float64)
    if not differs.any():
        return None
    largest = float(np.max(np.abs(stored.astype(np.float64) - expected.astype(np.float64))))
    return f"{name} differs from the recomputation at {int(differs.sum())} pixels (largest difference {largest:g})"


Task = TypeVar("Task")
# Called with a step's task count and name; yields the callback told of each finished task (a progress bar).
Tracker = Callable[[int, str], ContextManager[Callable[[int], None]]]


def run_parallel(
    tasks: Sequence[Task],
    handle: Callable[[object], None],
    *,
    workers: int,
    track: Tracker | None,
    description: str,
) -> None:
    """Run `run_task` on every task (in ``workers`` processes when > 1), passing each result to ``handle``.

    Results arrive in completion order; ``track`` (if given) is told of each one.
    """
    from visionassist_seg.process_pool import run_in_processes

    with track(len(tasks), description) if track else nullcontext(lambda n: None) as advance:

        def take(result: object) -> None:
            handle(result)
            advance(1)

        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                take(run_task(task))
        else:
            run_in_processes(run_task, tasks, take, workers=workers)
