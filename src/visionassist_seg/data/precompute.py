"""Raw OpenEDS -> preprocessed Hugging Face dataset: planning, shard writing, resume, manifest.

Work is split into shards of ``shard_size`` raw samples; each shard is written by one
worker to a temporary file and renamed into ``data/`` only when complete, after a
record of it (``.vaseg/shards/NAME.json``) that holds its checksum and its inputs'
fingerprint: the sha256 of every input file's content, so a label fixed in place (same
size, even the same mtime) is noticed. A rerun skips every shard whose record matches,
so an interrupted run resumes and redoes only unfinished or changed shards.

One run at a time writes a dataset folder (`folder_lock`), and only into a folder it
may write (`output_folder`); the worker processes are `process_pool`'s. Fetching the raw
data and showing progress are the caller's (`visionassist_seg.pipeline.precompute`).
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager

from visionassist_seg.atomic_write import replace_atomic, write_json_atomic
from visionassist_seg.data.fingerprint import sample_digest, task_fingerprint
from visionassist_seg.data.manifest import build_manifest
from visionassist_seg.data.output_folder import (
    STATE_DIR,
    check_output_dir,
    claim_output_dir,
    shard_record,
    shard_records_dir,
)
from visionassist_seg.data.plan import PrecomputeReport, ShardResult, ShardTask
from visionassist_seg.data.raw import (
    RAW_SPLITS,
    RawSample,
    decode_image,
    decode_label,
    display_name,
    has_labels,
    list_split,
    read_image_bytes,
    read_label_bytes,
    require_data_root,
)
from visionassist_seg.data.schema import DATA_DIR, MANIFEST, SPLITS, list_shards
from visionassist_seg.errors import VasegError
from visionassist_seg.folder_lock import folder_lock
from visionassist_seg.process_pool import run_in_processes

if TYPE_CHECKING:
    from visionassist_seg.settings import Settings

def plan_shards(settings: Settings) -> list[ShardTask]:
    """Return the shard tasks for train and validation, in a fixed order.

    Raises:
        VasegError: the raw folder is missing, or train/validation have no labelled images.
    """
    root = require_data_root(settings.raw.dir)
    tasks: list[ShardTask] = []
    for split in SPLITS:
        samples = list_split(root, split)
        if not samples or not has_labels(root, split):
            raise VasegError(
                f"Split '{split}' has no labelled images in {root / split} (expected images/*.png and "
                f"labels/*.npy). Rerun `vaseg download --raw-dir {settings.raw.dir} --force`."
            )
        samples = samples[: settings.dataset.limit] if settings.dataset.limit else samples
        count = max(1, math.ceil(len(samples) / settings.dataset.shard_size))
        for index in range(count):
            chunk = samples[index * settings.dataset.shard_size : (index + 1) * settings.dataset.shard_size]
            tasks.append(ShardTask(split, index, count, tuple(chunk)))
    return tasks


def unlabeled_splits(settings: Settings) -> list[str]:
    """Return the raw splits that exist but have no labels (e.g. test): reported, not processed."""
    root = require_data_root(settings.raw.dir)
    return [s for s in RAW_SPLITS if s not in SPLITS and (root / s / "images").is_dir() and not has_labels(root, s)]


def _resumable(task: ShardTask, settings: Settings) -> ShardResult | None:
    """Return the recorded result when the shard is already complete and its inputs unchanged.

    The cheap checks (a record, a shard of the recorded size) come first, so that a fresh
    run never reads its inputs twice; only then are the inputs and the shard hashed.
    """
    from visionassist_seg.data.shards import sha256_file

    state_path = shard_record(settings.dataset.dir, task.name)
    shard = Path(settings.dataset.dir) / DATA_DIR / task.name
    if not (state_path.is_file() and shard.is_file()):
        return None
    try:
        state = ShardResult(**json.loads(state_path.read_text()))
    except (ValueError, TypeError):
        return None
    if state.bytes != shard.stat().st_size or state.fingerprint != task_fingerprint(task, settings):
        return None
    if state.sha256 != sha256_file(shard):
        return None
    state.resumed = True
    return state


def preprocess_raw(sample: RawSample) -> dict | str:
    """Return the dataset row for one raw sample, or the reason it must be skipped."""
    return preprocess_with_digest(sample)[0]


def preprocess_with_digest(sample: RawSample) -> tuple[dict | str, tuple]:
    """Return (the dataset row or the reason to skip the sample, the `sample_digest` of what was read).

    Each file is read once: its bytes are hashed for the shard's fingerprint and decoded
    for the row, so the fingerprint describes exactly the content that was processed.
    """
    from visionassist_seg.ops import preprocess_sample

    image_data = label_data = None
    try:
        if sample.problem is not None:
            raise ValueError(sample.problem)
        image_data = read_image_bytes(sample.image)
        label_data = read_label_bytes(sample.label)
        processed = preprocess_sample(decode_image(image_data), decode_label(label_data))
    except (ValueError, TypeError) as err:
        return str(err), sample_digest(sample, image_data, label_data)
    row = {
        "image": processed.image,
        "label": processed.label,
        "spatial_weights": processed.spatial_weights,
        "dist_map": processed.dist_map,
        "filename": sample.stem,
        "preprocessed": True,
    }
    return row, sample_digest(sample, image_data, label_data)


def _relative(path: Path | None, root: Path) -> str:
    """Return ``path`` relative to ``root`` as printable text (non-UTF-8 bytes escaped)."""
    if path is None:
        return ""
    try:
        return display_name(Path(path).relative_to(root))
    except ValueError:
        return display_name(path)


def write_shard(task: ShardTask, settings: Settings, on_sample: Callable[[int], None] | None = None) -> ShardResult:
    """Write (or resume) one shard; return its row count, checksum and skipped samples.

    Rows are written in row groups of ``settings.dataset.row_group_size``; memory holds one
    sample's arrays and the compressed pages of one row group. The file appears in
    ``data/`` only once complete, and only after its record: every shard vaseg puts in
    ``data/`` is recorded as vaseg's.
    """
    from visionassist_seg.data.shards import open_shard_writer

    done = _resumable(task, settings)
    if done is not None:
        if on_sample:
            on_sample(len(task.samples))
        return done
    output_dir = Path(settings.dataset.dir)
    tmp = output_dir / STATE_DIR / "tmp" / f"{task.name}.{os.getpid()}.tmp"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    root = Path(settings.raw.dir)
    try:
        with open_shard_writer(tmp, settings.dataset.compression_level) as writer:
            rows_written, failures, digests = _write_rows(writer, task, settings.dataset.row_group_size, on_sample)
        digest = writer.sha256  # hashed while writing: no second read of the file
        skipped = [{"split": task.split, "file": _relative(s.image, root), "reason": r} for s, r in failures]
        fingerprint = task_fingerprint(task, settings, digests)
        result = ShardResult(task.split, task.name, rows_written, digest, tmp.stat().st_size, fingerprint, skipped)
        write_json_atomic(shard_record(output_dir, task.name), asdict(result))
        replace_atomic(tmp, output_dir / DATA_DIR / task.name)
    finally:
        tmp.unlink(missing_ok=True)
    return result


def _write_rows(
    writer, task: ShardTask, size: int, on_sample: Callable[[int], None] | None  # writer: ShardWriter
) -> tuple[int, list[tuple[RawSample, str]], list[tuple]]:
    """Preprocess and add each sample to ``writer``, one row group per ``size`` raw samples.

    Each row goes to the writer as soon as it is made, so only one sample's arrays are
    alive at a time. Returns the number of rows written, the (sample, reason) skipped and
    every sample's `sample_digest`.
    """
    rows = 0
    skipped: list[tuple[RawSample, str]] = []
    digests: list[tuple] = []
    for start in range(0, len(task.samples), size):
        for sample in task.samples[start : start + size]:
            row, sample_hash = preprocess_with_digest(sample)
            digests.append(sample_hash)
            if isinstance(row, str):
                skipped.append((sample, row))
            else:
                writer.add_row(row)
                rows += 1
            if on_sample:
                on_sample(1)
        writer.end_row_group()
    return rows, skipped, digests


def finalize_dataset(settings: Settings, tasks: list[ShardTask], results: list[ShardResult], seconds: float = 0.0) -> PrecomputeReport:
    """Remove stale shards vaseg wrote, write ``manifest.json`` and the dataset card; return the run's report.

    A stale shard (left by a run with another --limit or shard size) is deleted only
    when vaseg's record says vaseg wrote it; the record goes with it.
    """
    from visionassist_seg.data.card import write_card

    output_dir = Path(settings.dataset.dir)
    planned = {t.name for t in tasks}
    for split, split_shards in list_shards(output_dir).items():
        for path in split_shards:
            record = shard_record(output_dir, path.name)
            if split in SPLITS and path.name not in planned and record.is_file():
                path.unlink()
                record.unlink()
    _drop_records_without_shards(output_dir, planned)
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


def _drop_records_without_shards(output_dir: Path, planned: set[str]) -> None:
    """Delete the records of unplanned shards that are not in ``data/`` (a run killed between record and move).

    Left alone, such a record would later claim a file of that name as vaseg's.
    """
    records = shard_records_dir(output_dir)
    for record in records.glob("*.parquet.json") if records.is_dir() else []:
        name = record.name.removesuffix(".json")
        if name not in planned and not (output_dir / DATA_DIR / name).exists():
            record.unlink()


def _init_worker(queue, parquet_metadata: dict[bytes, bytes]) -> None:  # type: ignore[no-untyped-def]
    """Worker start-up: one OpenCV thread per process, the parent's parquet metadata, its progress queue."""
    import cv2

    from visionassist_seg.data.shards import use_hf_key_value_metadata

    cv2.setNumThreads(1)  # the pool already uses every core
    use_hf_key_value_metadata(parquet_metadata)
    global _progress_queue
    _progress_queue = queue


_progress_queue = None


def _write_shard_in_worker(task: ShardTask, settings: Settings) -> ShardResult:
    return write_shard(task, settings, on_sample=_progress_queue.put if _progress_queue is not None else None)


def run_shards(
    tasks: list[ShardTask], settings: Settings, on_sample: Callable[[int], None] | None = None
) -> list[ShardResult]:
    """Write every task's shard with ``settings.workers`` processes (in-process for one); return results.

    Shards are written whole by one worker each, so output bytes do not depend on the
    number of workers. On any error or interrupt (Ctrl-C) the workers are stopped at once;
    finished shards stay and a rerun resumes from them.
    """
    if settings.workers == 1 or len(tasks) == 1:
        import cv2

        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return [write_shard(task, settings, on_sample) for task in tasks]
        finally:
            cv2.setNumThreads(threads)
    return _run_pool(tasks, settings, on_sample)


def _run_pool(tasks: list[ShardTask], settings: Settings, on_sample: Callable[[int], None] | None) -> list[ShardResult]:
    import multiprocessing
    import queue as queue_module

    from visionassist_seg.data.shards import hf_key_value_metadata

    progress_queue = multiprocessing.get_context("spawn").Queue()

    def forward_progress() -> None:
        while True:
            try:
                count = progress_queue.get_nowait()
            except queue_module.Empty:
                return
            if on_sample:
                on_sample(count)

    results: list[ShardResult] = []
    # Largest shards first keeps the workers busy until the end.
    order = sorted(tasks, key=lambda t: -len(t.samples))
    run_in_processes(  # the workers need no credentials
        partial(_write_shard_in_worker, settings=settings.without_secrets()), order, results.append, workers=settings.workers,
        initializer=_init_worker, initargs=(progress_queue, hf_key_value_metadata()), on_tick=forward_progress,
    )  # fmt: skip
    return results


def write_dataset(
    settings: Settings,
    tasks: list[ShardTask],
    *,
    overwrite: bool = False,
    track: Callable[[int], ContextManager[Callable[[int], None]]] | None = None,
) -> PrecomputeReport:
    """Write every planned shard in parallel, then the manifest and card; return the run's report.

    The output folder is locked for the whole run and checked under the lock
    (`check_output_dir`: only an empty folder or one precompute made, unless
    ``overwrite``), so a second run into it stops with an error instead of destroying this
    one's files. ``track``, called with the number of samples once the folder is locked,
    yields the callback that is told of every sample written (a progress bar).

    Raises:
        VasegError: the folder belongs to someone else, another run holds it, or it cannot be written.
    """
    output_dir = Path(settings.dataset.dir)
    with folder_lock(output_dir, "precompute"):
        displaced = claim_output_dir(check_output_dir(output_dir, overwrite=overwrite))
        _clear_stale_temporaries(output_dir)
        started = time.perf_counter()
        total = sum(len(t.samples) for t in tasks)
        with track(total) if track is not None else nullcontext(None) as on_sample:
            results = run_shards(tasks, settings, on_sample)
        report = finalize_dataset(settings, tasks, results, time.perf_counter() - started)
    report.displaced = [str(path) for path in displaced]
    return report


def _clear_stale_temporaries(output_dir: Path) -> None:
    """Delete partial shards an interrupted run left behind (vaseg's own, never read: they are outside data/)."""
    tmp_dir = output_dir / STATE_DIR / "tmp"
    if tmp_dir.is_dir():
        for path in tmp_dir.glob("*.tmp"):
            path.unlink(missing_ok=True)
