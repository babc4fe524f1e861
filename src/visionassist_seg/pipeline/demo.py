"""`vaseg demo`: synthetic data -> precompute -> validate -> train -> ONNX, end to end on a laptop CPU.

The demo folder records which of its parts (raw/, dataset/, run/) the demo made
(``.vaseg/owner.json``); ``--overwrite`` removes only those, never anything else in the
folder, and the folder is locked while a demo runs in it.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from visionassist_seg.console import console
from visionassist_seg.errors import VasegError
from visionassist_seg.pipeline.precompute import run_precompute

# Chosen so a 2-core CPU finishes in well under 5 minutes with validation pupil IoU >= 0.9.
DEMO_COUNT = 120
DEMO_SCALE = 0.25
DEMO_EPOCHS = 15
DEMO_BATCH = 8
DEMO_LR = 3e-3
DEMO_VALIDATE_SAMPLES = 4
DEMO_PARTS = ("raw", "dataset", "run")
DEMO_JOB = "demo"


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


def _record_path(directory: Path) -> Path:
    from visionassist_seg.data.output_folder import OWNER_FILE, STATE_DIR

    return directory / STATE_DIR / OWNER_FILE


def demo_parts_made(directory: Path) -> list[str]:
    """Return the parts of ``directory`` that vaseg's record says an earlier demo made ([] without a record)."""
    try:
        record = json.loads(_record_path(directory).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(record, dict) or record.get("job") != DEMO_JOB:
        return []
    return [part for part in record.get("made", []) if part in DEMO_PARTS]


def check_directory(directory: Path, overwrite: bool) -> list[str]:
    """Return the parts an earlier demo made in ``directory`` that ``overwrite`` will remove.

    Raises:
        VasegError: the folder is not empty and ``overwrite`` is not set, or a raw/,
            dataset/ or run/ folder there was not made by the demo (it is never deleted).
    """
    from visionassist_seg.data.output_folder import BOOKKEEPING
    from visionassist_seg.folder_lock import folder_error

    try:
        entries = sorted(p.name for p in directory.iterdir() if p.name not in BOOKKEEPING) if directory.is_dir() else []
    except OSError as err:
        raise folder_error(directory, err) from None
    if not entries:
        return []
    made = demo_parts_made(directory)
    if not overwrite:
        earlier = f"it holds an earlier demo's {', '.join(made)}" if made else f"it holds {', '.join(entries[:5])}"
        raise VasegError(
            f"Demo folder {directory} is not empty ({earlier}). Pass --dir a new folder, or --overwrite to "
            "replace the raw, dataset and run folders an earlier demo made there (nothing else is removed)."
        )
    foreign = [part for part in DEMO_PARTS if (directory / part).exists() and part not in made]
    if foreign:
        raise VasegError(
            f"Demo folder {directory} holds {', '.join(p + '/' for p in foreign)} that no earlier demo made, so "
            "--overwrite will not delete it. Pass --dir a new folder, or move it out of the way."
        )
    return made


def prepare_directory(directory: Path, parts_to_remove: list[str]) -> None:
    """Remove the parts an earlier demo made and record that this demo makes every part (hold the lock)."""
    from visionassist_seg.atomic_write import write_json_atomic

    for part in parts_to_remove:
        if (directory / part).exists():  # an interrupted demo may not have made every part
            shutil.rmtree(directory / part)
    write_json_atomic(_record_path(directory), {"job": DEMO_JOB, "made": list(DEMO_PARTS)})


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
    from visionassist_seg.folder_lock import folder_lock

    directory = Path(directory)
    parts_to_remove = check_directory(directory, overwrite)
    with folder_lock(directory, "demo"):  # a second demo here must not remove this one's folders
        prepare_directory(directory, parts_to_remove)
        return _run_demo_steps(
            directory, count=count, scale=scale, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
            device=device, progress=progress,
        )  # fmt: skip


def _run_demo_steps(
    directory: Path, *, count: int, scale: float, epochs: int, batch_size: int, lr: float, seed: int, device: str,
    progress: bool,
) -> DemoResult:  # fmt: skip
    """Run the pipeline's steps in a prepared demo folder; return where everything is."""
    from visionassist_seg.data.synthetic import split_counts, write_synthetic_raw
    from visionassist_seg.settings import load_settings
    from visionassist_seg.train.model import scaled_size
    from visionassist_seg.train.loop import train
    from visionassist_seg.validate import validate_dataset

    raw_dir, dataset_dir, run_dir = (directory / part for part in DEMO_PARTS)
    settings = load_settings(
        seed=seed, workers=1, raw={"source": "synthetic", "synthetic_count": count, "dir": raw_dir},
        dataset={"dir": dataset_dir},
        train={
            "source": "local", "run_dir": run_dir, "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "scale": scale, "device": device, "amp": False, "compile": False,
        },
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
    report = validate_dataset(dataset_dir=dataset_dir, raw_dir=raw_dir, samples=DEMO_VALIDATE_SAMPLES, seed=seed)
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
    console.print(f"{what} in {elapsed:.1f} s: {str(where)}", highlight=False)
    return elapsed
