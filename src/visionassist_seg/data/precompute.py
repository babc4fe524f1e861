"""Raw OpenEDS -> preprocessed Hugging Face dataset: planning, shard writing, resume, manifest.

Work is split into shards of ``shard_size`` raw samples; each shard is written by one
worker to a temporary file and renamed into ``data/`` only when complete, with a
state file recording its inputs' fingerprint. A rerun skips every shard whose state
matches, so an interrupted run resumes and redoes only unfinished shards.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from visionassist_seg import __version__
from visionassist_seg.data.raw import RAW_SPLITS, RawSample, has_labels, list_split, read_image, read_label, require_data_root
from visionassist_seg.data.schema import DATA_DIR, MANIFEST, SPLITS, list_shards, shard_name
from visionassist_seg.data.shards import COLUMN_ENCODINGS, write_json_atomic
from visionassist_seg.errors import VasegError
from visionassist_seg.ops import intensity, labels

if TYPE_CHECKING:  # pydantic settings take 0.17 s to import: worker processes do without
    from visionassist_seg.settings import Settings

STATE_DIR = ".vaseg"
PREPROCESSING = {
    "gamma": intensity.GAMMA,
    "clahe_clip_limit": intensity.CLAHE_CLIP_LIMIT,
    "clahe_tile_grid": list(intensity.CLAHE_TILE_GRID),
    "pupil_class": labels.PUPIL_CLASS,
    "edge_weight": labels.EDGE_WEIGHT,
    "canny_thresholds": [0, 3],
    "dilate_kernel": "(3, 3) as passed by RITnet: a 2x1 vertical kernel",
    "distance_normalisation": "sqrt((H-1)^2 + (W-1)^2)",
}


@dataclass(frozen=True)
class ShardTask:
    """One output shard: the raw samples of ``split`` numbered [start, start + len(samples))."""

    split: str
    index: int
    count: int
    samples: tuple[RawSample, ...]

    @property
    def name(self) -> str:
        return shard_name(self.split, self.index, self.count)


@dataclass(frozen=True)
class ShardSettings:
    """The settings that writing a shard reads, for worker processes.

    A plain dataclass: a worker unpickles it without importing pydantic and the
    `Settings` model (0.17 s of each worker's start-up), and it holds no secrets.
    """

    raw_dir: Path
    output_dir: Path
    compression_level: int
    row_group_size: int

    @classmethod
    def of(cls, settings: Settings) -> ShardSettings:
        return cls(Path(settings.raw_dir), Path(settings.output_dir), settings.compression_level, settings.row_group_size)


@dataclass
class ShardResult:
    """What writing (or resuming) one shard produced."""

    split: str
    name: str
    rows: int
    sha256: str
    bytes: int
    fingerprint: str
    skipped: list[dict] = field(default_factory=list)
    resumed: bool = False


@dataclass
class PrecomputeReport:
    """The outcome of a precompute run."""

    output_dir: Path
    rows: dict[str, int]
    shards: dict[str, int]
    bytes: dict[str, int]
    skipped: list[dict]
    unlabeled_splits: list[str]
    resumed_shards: int
    seconds: float


def plan_shards(settings: Settings) -> list[ShardTask]:
    """Return the shard tasks for train and validation, in a fixed order.

    Raises:
        VasegError: the raw folder is missing, or train/validation have no labelled images.
    """
    root = require_data_root(settings.raw_dir)
    tasks: list[ShardTask] = []
    for split in SPLITS:
        samples = list_split(root, split)
        if not samples or not has_labels(root, split):
            raise VasegError(
                f"Split '{split}' has no labelled images in {root / split} (expected images/*.png and "
                f"labels/*.npy). Rerun `vaseg download --raw-dir {settings.raw_dir} --force`."
            )
        samples = samples[: settings.limit] if settings.limit else samples
        count = max(1, math.ceil(len(samples) / settings.shard_size))
        for index in range(count):
            chunk = samples[index * settings.shard_size : (index + 1) * settings.shard_size]
            tasks.append(ShardTask(split, index, count, tuple(chunk)))
    return tasks


def unlabeled_splits(settings: Settings) -> list[str]:
    """Return the raw splits that exist but have no labels (e.g. test): reported, not processed."""
    root = require_data_root(settings.raw_dir)
    return [s for s in RAW_SPLITS if s not in SPLITS and (root / s / "images").is_dir() and not has_labels(root, s)]


def task_fingerprint(task: ShardTask, settings: Settings | ShardSettings) -> str:
    """Return a hash of everything that determines the shard's bytes."""
    files = [
        (s.image.name, _size(s.image), s.label.name if s.label else None, _size(s.label)) for s in task.samples
    ]
    recipe = {
        "files": files,
        "preprocessing": PREPROCESSING,
        "compression_level": settings.compression_level,
        "row_group_size": settings.row_group_size,
        "encodings": COLUMN_ENCODINGS,  # a shard written with other encodings is rewritten, not resumed
        "version": __version__,
        "name": task.name,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _size(path: Path | None) -> int | None:
    try:
        return path.stat().st_size if path is not None else None
    except OSError:
        return None


def _state_path(output_dir: Path, name: str) -> Path:
    return Path(output_dir) / STATE_DIR / "shards" / f"{name}.json"


def _resumable(task: ShardTask, settings: Settings | ShardSettings, fingerprint: str) -> ShardResult | None:
    """Return the recorded result when the shard is already complete and unchanged."""
    from visionassist_seg.data.shards import sha256_file

    state_path = _state_path(settings.output_dir, task.name)
    shard = Path(settings.output_dir) / DATA_DIR / task.name
    if not (state_path.is_file() and shard.is_file()):
        return None
    try:
        state = ShardResult(**json.loads(state_path.read_text()))
    except (ValueError, TypeError):
        return None
    if state.fingerprint != fingerprint or state.bytes != shard.stat().st_size or state.sha256 != sha256_file(shard):
        return None
    state.resumed = True
    return state


def preprocess_raw(sample: RawSample) -> dict | str:
    """Return the dataset row for one raw sample, or the reason it must be skipped."""
    from visionassist_seg.ops import preprocess_sample

    try:
        image = read_image(sample.image)
        raw_label = read_label(sample.label)
        processed = preprocess_sample(image, raw_label)
    except (ValueError, TypeError) as err:
        return str(err)
    return {
        "image": processed.image,
        "label": processed.label,
        "spatial_weights": processed.spatial_weights,
        "dist_map": processed.dist_map,
        "filename": sample.stem,
        "preprocessed": True,
    }


def _relative(path: Path | None, root: Path) -> str:
    if path is None:
        return ""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def write_shard(task: ShardTask, settings: Settings | ShardSettings, on_sample: Callable[[int], None] | None = None) -> ShardResult:
    """Write (or resume) one shard; return its row count, checksum and skipped samples.

    Rows are written in row groups of ``settings.row_group_size``; memory holds one
    sample's arrays and the compressed pages of one row group. The file appears in
    ``data/`` only once complete.
    """
    from visionassist_seg.data.shards import open_shard_writer, replace_atomic

    fingerprint = task_fingerprint(task, settings)
    done = _resumable(task, settings, fingerprint)
    if done is not None:
        if on_sample:
            on_sample(len(task.samples))
        return done
    output_dir = Path(settings.output_dir)
    tmp = output_dir / STATE_DIR / "tmp" / f"{task.name}.{os.getpid()}.tmp"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    root = Path(settings.raw_dir)
    try:
        with open_shard_writer(tmp, settings.compression_level) as writer:
            rows_written, failures = _write_rows(writer, task, settings.row_group_size, on_sample)
        digest = writer.sha256  # hashed while writing: no second read of the file
        skipped = [{"split": task.split, "file": _relative(s.image, root), "reason": r} for s, r in failures]
        result = ShardResult(task.split, task.name, rows_written, digest, tmp.stat().st_size, fingerprint, skipped)
        replace_atomic(tmp, output_dir / DATA_DIR / task.name)
    finally:
        tmp.unlink(missing_ok=True)
    write_json_atomic(_state_path(output_dir, task.name), asdict(result))
    return result


def _write_rows(
    writer, task: ShardTask, size: int, on_sample: Callable[[int], None] | None  # writer: ShardWriter
) -> tuple[int, list[tuple[RawSample, str]]]:
    """Preprocess and add each sample to ``writer``, one row group per ``size`` raw samples.

    Each row goes to the writer as soon as it is made, so only one sample's arrays are
    alive at a time. Returns the number of rows written and the (sample, reason) skipped.
    """
    rows = 0
    skipped: list[tuple[RawSample, str]] = []
    for start in range(0, len(task.samples), size):
        for sample in task.samples[start : start + size]:
            row = preprocess_raw(sample)
            if isinstance(row, str):
                skipped.append((sample, row))
            else:
                writer.add_row(row)
                rows += 1
            if on_sample:
                on_sample(1)
        writer.end_row_group()
    return rows, skipped


def finalize_dataset(settings: Settings, tasks: list[ShardTask], results: list[ShardResult], seconds: float = 0.0) -> PrecomputeReport:
    """Remove stale shards, write ``manifest.json`` and the dataset card; return the run's report."""
    from visionassist_seg.data.card import write_card

    output_dir = Path(settings.output_dir)
    planned = {t.name for t in tasks}
    for split, split_shards in list_shards(output_dir).items():
        for path in split_shards:
            if split in SPLITS and path.name not in planned:  # left by a run with another --limit or shard size
                path.unlink()
    by_split: dict[str, list[ShardResult]] = {s: [] for s in SPLITS}
    for result in sorted(results, key=lambda r: r.name):
        by_split[result.split].append(result)
    skipped = [item for r in by_split["train"] + by_split["validation"] for item in r.skipped]
    report = PrecomputeReport(
        output_dir=output_dir,
        rows={s: sum(r.rows for r in rs) for s, rs in by_split.items()},
        shards={s: len(rs) for s, rs in by_split.items()},
        bytes={s: sum(r.bytes for r in rs) for s, rs in by_split.items()},
        skipped=skipped,
        unlabeled_splits=unlabeled_splits(settings),
        resumed_shards=sum(r.resumed for r in results),
        seconds=seconds,
    )
    manifest = build_manifest(settings, by_split, report)
    write_json_atomic(output_dir / MANIFEST, manifest)
    write_card(output_dir, manifest)
    return report


def build_manifest(settings: Settings, by_split: dict[str, list[ShardResult]], report: PrecomputeReport) -> dict:
    """Return the manifest: counts, per-shard rows and sha256, settings and skipped samples."""
    import shlex
    import sys

    return {
        "format": "vaseg-precomputed",
        "version": 1,
        "package_version": __version__,
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else None,
        "source": settings.kaggle_dataset if settings.source == "kaggle" else "synthetic",
        "splits": {
            split: {
                "rows": report.rows[split],
                "shards": [
                    {"file": f"{DATA_DIR}/{r.name}", "rows": r.rows, "sha256": r.sha256, "bytes": r.bytes}
                    for r in results
                ],
            }
            for split, results in by_split.items()
        },
        "skipped": report.skipped,
        "unlabeled_splits": report.unlabeled_splits,
        "parameters": PREPROCESSING,
        "settings": {
            k: v
            for k, v in settings.masked_dump().items()
            if k in {"source", "kaggle_dataset", "limit", "shard_size", "row_group_size", "compression_level", "seed", "synthetic_count", "hf_repo"}
        },
        "library_versions": _library_versions(),
    }


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("numpy", "scipy", "opencv-python-headless", "pyarrow", "datasets"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def _init_worker(queue, parquet_metadata: dict[bytes, bytes]) -> None:  # type: ignore[no-untyped-def]
    """Worker start-up: one OpenCV thread per process (the pool already uses every core)."""
    import cv2

    from visionassist_seg.data.shards import use_hf_key_value_metadata

    cv2.setNumThreads(1)
    use_hf_key_value_metadata(parquet_metadata)
    global _progress_queue
    _progress_queue = queue


_progress_queue = None


def _write_shard_in_worker(task: ShardTask, settings: ShardSettings) -> ShardResult:
    return write_shard(task, settings, on_sample=_progress_queue.put if _progress_queue is not None else None)


def run_shards(
    tasks: list[ShardTask], settings: Settings, on_sample: Callable[[int], None] | None = None
) -> list[ShardResult]:
    """Write every task's shard with ``settings.workers`` processes (in-process for one); return results.

    Shards are written whole by one worker each, so output bytes do not depend on the
    number of workers.
    """
    if settings.workers == 1 or len(tasks) == 1:
        import cv2

        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return [write_shard(task, settings, on_sample) for task in tasks]
        finally:
            cv2.setNumThreads(threads)
    import multiprocessing
    import queue as queue_module
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from visionassist_seg.data.shards import hf_key_value_metadata

    context = multiprocessing.get_context("spawn")
    progress_queue = context.Queue()
    shard_settings = ShardSettings.of(settings)
    # Largest shards first keeps the workers busy until the end.
    order = sorted(tasks, key=lambda t: -len(t.samples))
    with ProcessPoolExecutor(
        max_workers=min(settings.workers, len(tasks)), mp_context=context, initializer=_init_worker,
        initargs=(progress_queue, hf_key_value_metadata()),
    ) as pool:
        pending = {pool.submit(_write_shard_in_worker, task, shard_settings) for task in order}
        results = []
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            results += [future.result() for future in finished]
            while True:
                try:
                    count = progress_queue.get_nowait()
                except queue_module.Empty:
                    break
                if on_sample:
                    on_sample(count)
    return results


def run_precompute(settings: Settings, *, download: bool = True, progress: bool = True) -> PrecomputeReport:
    """Download raw data if needed, write every shard in parallel, then the manifest and card."""
    from visionassist_seg.kaggle import ensure_raw

    if download:
        ensure_raw(settings)
    tasks = plan_shards(settings)
    _clear_stale_temporaries(Path(settings.output_dir))
    started = time.perf_counter()
    total = sum(len(t.samples) for t in tasks)
    from visionassist_seg.console import item_progress

    with item_progress(total, "precompute", enabled=progress) as advance:
        results = run_shards(tasks, settings, advance)
    return finalize_dataset(settings, tasks, results, time.perf_counter() - started)


def _clear_stale_temporaries(output_dir: Path) -> None:
    """Delete partial shards an interrupted run left behind (never read: they are outside data/)."""
    tmp_dir = output_dir / STATE_DIR / "tmp"
    if tmp_dir.is_dir():
        for path in tmp_dir.glob("*.tmp"):
            path.unlink(missing_ok=True)
