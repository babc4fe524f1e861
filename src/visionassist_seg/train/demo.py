"""`vaseg demo`: synthetic data -> precompute -> validate -> train -> ONNX, end to end on a laptop CPU."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from visionassist_seg.console import console
from visionassist_seg.errors import VasegError

# Chosen so a 2-core CPU finishes in well under 5 minutes with validation pupil IoU >= 0.9.
DEMO_COUNT = 120
DEMO_SCALE = 0.25
DEMO_EPOCHS = 15
DEMO_BATCH = 8
DEMO_LR = 3e-3
DEMO_VALIDATE_SAMPLES = 4
DEMO_PARTS = ("raw", "dataset", "run")


@dataclass
class DemoResult:
    """Where the demo put things, and how well and fast it went."""

    directory: Path
    dataset_dir: Path
    run_dir: Path
    onnx_path: Path | None
    best_pupil_iou: float
    best_miou: float
    seconds: dict[str, float]


def prepare_directory(directory: Path, overwrite: bool) -> None:
    """Create ``directory``, or clear a previous demo's parts in it with ``overwrite``.

    Raises:
        VasegError: the folder holds files and ``overwrite`` is not set.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if not any(directory.iterdir()):
        return
    if not overwrite:
        raise VasegError(
            f"Demo folder {directory} is not empty. Pass --dir a new folder, or --overwrite to replace "
            f"the {', '.join(DEMO_PARTS)} folders of an earlier demo there."
        )
    for part in DEMO_PARTS:
        shutil.rmtree(directory / part, ignore_errors=True)


def run_demo(
    directory: Path,
    *,
    count: int = DEMO_COUNT,
    scale: float = DEMO_SCALE,
    epochs: int = DEMO_EPOCHS,
    batch_size: int = DEMO_BATCH,
    lr: float = DEMO_LR,
    seed: int = 0,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = True,
) -> DemoResult:
    """Run the whole pipeline on synthetic data in ``directory``; return where everything is.

    Raises:
        VasegError: the folder is not empty (without ``overwrite``) or the dataset fails validation.
    """
    from visionassist_seg.data.precompute import run_precompute
    from visionassist_seg.data.synthetic import split_counts, write_synthetic_raw
    from visionassist_seg.settings import load_settings
    from visionassist_seg.train.loader import scaled_size
    from visionassist_seg.train.loop import train
    from visionassist_seg.validate import validate_dataset

    directory = Path(directory)
    prepare_directory(directory, overwrite)
    raw_dir, dataset_dir, run_dir = (directory / part for part in DEMO_PARTS)
    settings = load_settings(
        source="synthetic", synthetic_count=count, raw_dir=raw_dir, output_dir=dataset_dir, dataset=dataset_dir,
        train_source="local", run_dir=run_dir, epochs=epochs, batch_size=batch_size, lr=lr, scale=scale, seed=seed,
        device=device, workers=1, amp=False, compile=False, resume=None, train_limit=None,
    )  # fmt: skip
    height, width = scaled_size(scale)
    console.print(
        f"vaseg demo in {directory}: {count} synthetic train samples (+{split_counts(count)['validation']} validation), "
        f"scale {scale} ({height}x{width}), {epochs} epochs, batch {batch_size}, lr {lr:g}, "
        f"device {device}.",
        highlight=False,
    )
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    write_synthetic_raw(raw_dir, count, seed)
    seconds["synthetic"] = _lap(started, "Wrote synthetic raw data", raw_dir)

    started = time.perf_counter()
    run_precompute(settings, download=False, progress=progress)
    seconds["precompute"] = _lap(started, "Precomputed the dataset", dataset_dir)

    started = time.perf_counter()
    report = validate_dataset(dataset_dir=dataset_dir, raw_dir=raw_dir, samples=DEMO_VALIDATE_SAMPLES, seed=seed, progress=False)
    if not report.passed:
        failed = ", ".join(row.check for row in report.rows if row.result == "fail") or "see `vaseg validate`"
        raise VasegError(
            f"The demo dataset in {dataset_dir} failed validation ({failed}). Run `vaseg validate --dataset "
            f"{dataset_dir} --raw-dir {raw_dir}` for details."
        )
    seconds["validate"] = _lap(started, "Validated the dataset", dataset_dir)

    started = time.perf_counter()
    result = train(settings, progress=progress)
    seconds["train"] = _lap(started, "Trained and exported", run_dir)
    return DemoResult(
        directory=directory, dataset_dir=dataset_dir, run_dir=run_dir, onnx_path=result.onnx_path,
        best_pupil_iou=result.best_pupil_iou, best_miou=result.best_miou, seconds=seconds,
    )  # fmt: skip


def _lap(started: float, what: str, where: Path) -> float:
    elapsed = time.perf_counter() - started
    console.print(f"{what} in {elapsed:.1f} s: {where}", highlight=False)
    return elapsed
