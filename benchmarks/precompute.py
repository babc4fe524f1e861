"""Precompute throughput, bytes on disk and peak memory: vaseg vs a plain reference implementation.

The reference is the published pipeline written plainly: one process, four scipy
distance transforms, flat list columns, pyarrow's default parquet options (snappy,
dictionary encoding, statistics). Both run in the same process on the same synthetic
raw files (or on real OpenEDS with --raw-dir), one OpenCV thread each, so only
ratios are meaningful on a shared machine.

    python benchmarks/precompute.py                 # 256 train + 64 validation samples
    python benchmarks/precompute.py --samples 64    # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from visionassist_seg.data.precompute import plan_shards, run_shards
from visionassist_seg.data.raw import list_split, require_data_root

# scipy, pyarrow.parquet, rich and the pydantic settings are imported where they are
# used: vaseg's worker processes (spawn) re-import this module as __mp_main__, and
# with them at the top each worker spent 0.6 s on imports it never uses (the vaseg
# console script costs a worker 0.08 s). Each is imported before its timer starts.

REFERENCE_ROW_GROUP = 16


def reference_sample(image_path: Path, label_path: Path) -> dict:
    """The published preprocessing, written plainly (four EDTs, float64 maths)."""
    from scipy.ndimage import distance_transform_edt

    image = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
    raw_label = np.load(label_path)
    table = (255.0 * np.linspace(0, 1, 256) ** 0.8).astype(np.uint8)
    image = cv2.createCLAHE(clipLimit=1.5, tileGridSize=(8, 8)).apply(cv2.LUT(image, table))
    label = (raw_label == 3).astype(np.uint8)
    edges = cv2.Canny((label * 255).astype(np.uint8), 0, 3) / 255
    weights = (cv2.dilate(edges, (3, 3), iterations=1) * 20).astype(np.float32)
    height, width = label.shape
    maps = np.zeros((2, height, width))
    for c in (0, 1):
        pos = label == c
        if pos.any():
            maps[c] = distance_transform_edt(~pos) * ~pos - (distance_transform_edt(pos) - 1) * pos
    maps = (maps / np.sqrt((height - 1) ** 2 + (width - 1) ** 2)).astype(np.float32)
    return {"image": image, "label": label, "spatial_weights": weights, "dist_map": maps, "filename": image_path.stem}


def _flat_lists(rows: list[dict]):  # -> pyarrow.Table
    import pyarrow as pa

    columns = {}
    for name in ("image", "label", "spatial_weights", "dist_map"):
        flat = np.stack([r[name].reshape(-1) for r in rows])
        offsets = pa.array(np.arange(0, flat.size + 1, flat.shape[1], dtype=np.int32))
        columns[name] = pa.ListArray.from_arrays(offsets, pa.array(flat.reshape(-1)))
    columns["filename"] = pa.array([r["filename"] for r in rows])
    return pa.table(columns)


def run_reference(raw_dir: Path, out_dir: Path, limit: int | None) -> tuple[float, int, int]:
    """Return (seconds, rows, bytes) for the reference pipeline over train and validation."""
    import pyarrow.parquet as pq
    import scipy.ndimage  # noqa: F401  (imported before the clock starts, like vaseg's modules)

    root = require_data_root(raw_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows_total = 0
    for split in ("train", "validation"):
        samples = [s for s in list_split(root, split) if s.label is not None][:limit]
        writer = None
        for i in range(0, len(samples), REFERENCE_ROW_GROUP):
            table = _flat_lists([reference_sample(s.image, s.label) for s in samples[i : i + REFERENCE_ROW_GROUP]])
            writer = writer or pq.ParquetWriter(out_dir / f"{split}.parquet", table.schema)
            writer.write_table(table)
            rows_total += table.num_rows
        writer.close()
    seconds = time.perf_counter() - start
    return seconds, rows_total, sum(p.stat().st_size for p in out_dir.glob("*.parquet"))


def run_vaseg(raw_dir: Path, out_dir: Path, workers: int, limit: int | None, shard_size: int) -> tuple[float, int, int]:
    """Return (seconds, rows, bytes) for vaseg's shard writing with ``workers`` processes."""
    from visionassist_seg.settings import Settings

    settings = Settings(workers=workers, raw={"dir": raw_dir}, dataset={"dir": out_dir, "limit": limit, "shard_size": shard_size})
    tasks = plan_shards(settings)
    start = time.perf_counter()
    results = run_shards(tasks, settings)
    seconds = time.perf_counter() - start
    return seconds, sum(r.rows for r in results), sum(r.bytes for r in results)


def writer_ms_per_sample(raw_dir: Path, work: Path, count: int = 32) -> dict[str, float]:
    """Return ms/sample to write the same preprocessed rows with pyarrow's writer and vaseg's."""
    import pyarrow.parquet as pq

    from visionassist_seg.data.precompute import preprocess_raw
    from visionassist_seg.data.schema import dataset_features
    from visionassist_seg.data.shards import open_shard_writer
    from visionassist_seg.settings import Settings

    # pyarrow's side is the tests' reference writer (tests/arrow_rows.py), not part of vaseg.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from arrow_rows import parquet_options, rows_to_table

    samples = list_split(require_data_root(raw_dir), "train")[:count]
    rows = [row for row in (preprocess_raw(s) for s in samples) if not isinstance(row, str)]
    features = dataset_features()
    groups = [rows[i : i + 16] for i in range(0, len(rows), 16)]
    start = time.perf_counter()
    level = Settings().dataset.compression_level
    with pq.ParquetWriter(work / "pyarrow.parquet", features.arrow_schema, **parquet_options(level)) as writer:
        for group in groups:
            writer.write_table(rows_to_table(group, features))
    pyarrow_ms = (time.perf_counter() - start) / len(rows) * 1e3
    start = time.perf_counter()
    with open_shard_writer(work / "vaseg.parquet", level) as writer:
        for group in groups:
            writer.write_rows(group)
    vaseg_ms = (time.perf_counter() - start) / len(rows) * 1e3
    return {"pyarrow ParquetWriter": pyarrow_ms, "vaseg ShardWriter": vaseg_ms}


def _name_and_size_digest(sample, image_data: bytes | None = None, label_data: bytes | None = None) -> tuple:
    """The shard fingerprint's inputs before content hashing (vaseg <= the issue-10 fix): names and sizes."""

    def size(path: Path | None) -> int | None:
        try:
            return path.stat().st_size if path is not None else None
        except OSError:
            return None

    label_name = sample.label.name if sample.label is not None else None
    return (sample.image.name, size(sample.image), label_name, size(sample.label))


def fingerprint_costs(raw_dir: Path, work: Path, limit: int | None, shard_size: int) -> dict[str, dict[str, float]]:
    """Return, for content fingerprints (now) and name + size ones (before), per sample: the
    fingerprint's ms, one-worker write ms and samples/s, and ms to rerun over a finished dataset.

    The same code runs both ways; only `sample_digest` (fingerprint's and precompute's) is swapped for the old
    recipe. Each step is timed in wall-clock and in this process's CPU time (one worker runs
    in-process): CPU time is the steadier number on a shared machine.
    """
    from unittest import mock

    from visionassist_seg.data import fingerprint as fingerprints, precompute
    from visionassist_seg.settings import Settings

    variants = {"content sha256 (now)": precompute.sample_digest, "name + size (before)": _name_and_size_digest}
    costs = {}
    for index, (name, digest) in enumerate(variants.items()):
        settings = Settings(workers=1, raw={"dir": raw_dir}, dataset={"dir": work / f"fingerprint{index}", "limit": limit, "shard_size": shard_size})
        tasks = plan_shards(settings)
        samples = sum(len(t.samples) for t in tasks)
        with mock.patch.object(precompute, "sample_digest", digest), mock.patch.object(fingerprints, "sample_digest", digest):
            fingerprint, _ = _timed(lambda: [precompute.task_fingerprint(task, settings) for task in tasks], samples)
            write, _ = _timed(lambda: run_shards(tasks, settings), samples)
            resume, resumed = _timed(lambda: run_shards(tasks, settings), samples)
        if not all(result.resumed for result in resumed):
            raise RuntimeError(f"{name}: the rerun rewrote shards instead of reusing them")
        costs[name] = {
            "fingerprint_ms_per_sample": fingerprint[0], "fingerprint_cpu_ms_per_sample": fingerprint[1],
            "write_ms_per_sample": write[0], "write_cpu_ms_per_sample": write[1], "samples_per_s": 1e3 / write[0],
            "resume_ms_per_sample": resume[0], "resume_cpu_ms_per_sample": resume[1],
        }  # fmt: skip
    return costs


def _timed(step, samples: int) -> tuple[tuple[float, float], object]:  # step: () -> object
    """Return ((wall ms, CPU ms of this process) per sample, the result) of ``step()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = step()
    return ((time.perf_counter() - wall) / samples * 1e3, (time.process_time() - cpu) / samples * 1e3), result


def peak_rss_mb(raw_dir: Path, out_dir: Path, limit: int, shard_size: int) -> float:
    """Return the peak RSS (MB) of a fresh one-worker precompute process over ``limit`` samples per split.

    On Linux the child's ru_maxrss starts from this (large) process's high-water mark:
    subprocess starts it with vfork, and exec keeps the old memory's peak. VmHWM in
    /proc/self/status belongs to the child's own memory, so it is read where it exists.
    """
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from visionassist_seg.settings import Settings\n"
        "from visionassist_seg.pipeline.precompute import run_precompute\n"
        f"s = Settings(workers=1, raw={{'dir': Path({str(raw_dir)!r})}}, "
        f"dataset={{'dir': Path({str(out_dir)!r}), 'limit': {limit}, 'shard_size': {shard_size}}})\n"
        "run_precompute(s, download=False, progress=False)\n"
        "try:\n"
        "    print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
        "except OSError:\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(output.strip().splitlines()[-1]) / 1024


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from visionassist_seg.data.synthetic import write_synthetic_raw

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=256, help="synthetic train samples (validation: a quarter)")
    parser.add_argument("--raw-dir", type=Path, help="benchmark on this raw OpenEDS tree instead of synthetic data")
    parser.add_argument("--shard-size", type=int, default=32, help="samples per shard (small: keeps 2 workers balanced)")
    parser.add_argument("--rss-samples", type=int, default=32, help="samples per split for the small peak-RSS run (x4 for the large)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one core per process for both pipelines
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="vaseg-bench-"))
    try:
        raw_dir = args.raw_dir or work / "raw"
        limit = args.samples if args.raw_dir else None
        if not args.raw_dir:
            with console.status("writing synthetic raw data"):
                write_synthetic_raw(raw_dir, max(args.samples, 4 * args.rss_samples), seed=0)
            limit = args.samples
        results = {}
        with console.status("reference, one process"):
            results["reference (1 process)"] = run_reference(raw_dir, work / "ref", limit)
        for workers in (1, 2):
            with console.status(f"vaseg, {workers} worker(s)"):
                results[f"vaseg ({workers} worker{'s' if workers > 1 else ''})"] = run_vaseg(
                    raw_dir, work / f"vaseg{workers}", workers, limit, args.shard_size
                )
        with console.status("writers"):
            writers = writer_ms_per_sample(raw_dir, work)
        with console.status("fingerprints"):
            fingerprints = fingerprint_costs(raw_dir, work, limit, args.shard_size)
        with console.status("peak RSS runs"):
            rss_small = peak_rss_mb(raw_dir, work / "rss1", args.rss_samples, args.shard_size)
            rss_large = peak_rss_mb(raw_dir, work / "rss4", 4 * args.rss_samples, args.shard_size)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ref_seconds, ref_rows, ref_bytes = results["reference (1 process)"]
    one_rate = results["vaseg (1 worker)"][1] / results["vaseg (1 worker)"][0]
    table = Table(title=f"precompute benchmark ({ref_rows} samples, {os.cpu_count()} cores)")
    for column in ("pipeline", "samples/s", "x reference", "MB/sample on disk", "x reference bytes"):
        table.add_column(column, justify="left" if column == "pipeline" else "right")
    for name, (seconds, rows, size) in results.items():
        rate = rows / seconds
        table.add_row(name, f"{rate:.1f}", f"{rate / (ref_rows / ref_seconds):.2f}", f"{size / rows / 1e6:.3f}", f"{(size / rows) / (ref_bytes / ref_rows):.2f}")
    console.print(table)
    two_rate = results["vaseg (2 workers)"][1] / results["vaseg (2 workers)"][0]
    console.print(f"2 workers / 1 worker: {two_rate / one_rate:.2f}x")
    console.print(
        f"peak RSS, one worker: {rss_small:.0f} MB for {args.rss_samples}/split, {rss_large:.0f} MB for "
        f"{4 * args.rss_samples}/split ({(rss_large / rss_small - 1) * 100:+.1f}%)"
    )
    console.print(
        "parquet writing of the same rows (zstd, same encodings): "
        + ", ".join(f"{name} {ms:.1f} ms/sample" for name, ms in writers.items())
    )
    for name, cost in fingerprints.items():
        console.print(
            f"shard fingerprint, {name}: fingerprint {cost['fingerprint_ms_per_sample']:.2f} ms/sample "
            f"({cost['fingerprint_cpu_ms_per_sample']:.2f} CPU); one-worker write {cost['samples_per_s']:.1f} samples/s "
            f"({cost['write_cpu_ms_per_sample']:.1f} CPU ms/sample); rerun over the finished dataset "
            f"{cost['resume_ms_per_sample']:.2f} ms/sample ({cost['resume_cpu_ms_per_sample']:.2f} CPU)"
        )
    if args.json:
        payload = {name: {"seconds": s, "rows": r, "bytes": b} for name, (s, r, b) in results.items()}
        payload["fingerprint"] = fingerprints
        payload["peak_rss_mb"] = {"small": rss_small, "large": rss_large}
        payload["writer_ms_per_sample"] = writers
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
