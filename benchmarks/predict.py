"""`vaseg predict` throughput at 400x640 on CPU, against the live demo's plain per-frame loop, in the same run.

Frames: synthetic IR eyes written as PNG files (so reading them is part of the work).
Models: ShallowNet exported to ONNX fp32 at full resolution, and one made for
``--scale 0.5`` (the graph resizes to 200x320 and back inside). Inference time does
not depend on the weights, but the ellipse fit does (a random network marks half the
frame as pupil): ``--checkpoint best.pt`` exports those weights at both sizes (fresh
weights otherwise); ``--model`` / ``--half-model`` take ONNX files as they are.

- per-frame loop (as the live demo runs): for each frame, read, gamma + CLAHE,
  ``astype(float32)`` into a (1, 1, 400, 640) tensor, one ``session.run``, ``np.argmax``
  over the classes, then the same ellipse fit and row output as vaseg.
- vaseg: `run_predictions` as `vaseg predict` runs it (batches of ``--batch-size``,
  class decision by one comparison, rows to JSON lines), with its seconds per stage.

    python benchmarks/predict.py --frames 64 --checkpoint vaseg-demo/run/best.pt
    python benchmarks/predict.py --frames 64 --batch-size 8 --threads 2 --json predict.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from visionassist_seg.data.synthetic import make_sample
from visionassist_seg.infer.geometry import fit_pupil
from visionassist_seg.infer.models import load_segmenter
from visionassist_seg.infer.predict import plan_inputs, run_predictions
from visionassist_seg.ops.intensity import enhance_image

STAGES = ("read", "preprocess", "inference", "fit", "write")


def write_frames(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{i:05d}.png"
        cv2.imwrite(str(path), make_sample(7, "train", i)[0])
        paths.append(path)
    return paths


def export_models(folder: Path, checkpoint: Path | None) -> tuple[Path, Path]:
    import torch

    from visionassist_seg.train.export import export_onnx
    from visionassist_seg.train.checkpoint import load_checkpoint
    from visionassist_seg.train.model import ShallowNet

    torch.manual_seed(0)
    model = ShallowNet().eval()
    if checkpoint is not None:
        model.load_state_dict(load_checkpoint(checkpoint, torch.device("cpu"))["model"])
    paths = folder / "full.onnx", folder / "half.onnx"
    for path, scale in zip(paths, (1.0, 0.5)):
        export_onnx(model, path, scale=scale)
    return paths


def per_frame_loop(model: Path, paths: list[Path], output: Path, threads: int | None) -> dict:
    """The live demo's loop: one frame at a time, numpy preprocessing, one onnxruntime call per frame."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    seconds = dict.fromkeys(STAGES, 0.0)
    with output.open("w") as handle:
        for path in paths:
            t0 = time.perf_counter()
            grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            t1 = time.perf_counter()
            tensor = enhance_image(grey).astype(np.float32).reshape(1, 1, 400, 640)
            t2 = time.perf_counter()
            logits = session.run(None, {"image": tensor})[0]
            mask = np.argmax(logits, axis=1)[0]
            t3 = time.perf_counter()
            fit = fit_pupil(logits[0]) if mask.any() else None
            t4 = time.perf_counter()
            handle.write(json.dumps(fit.row(str(path), 0) if fit else {"source": str(path), "pupil": False}) + "\n")
            t5 = time.perf_counter()
            for stage, start, stop in zip(STAGES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                seconds[stage] += stop - start
    return seconds


def vaseg_run(model: Path, paths: list[Path], output: Path, batch_size: int, threads: int | None) -> dict:
    summary = run_predictions(load_segmenter(model, threads=threads), plan_inputs(paths), output, batch_size=batch_size)
    return summary.seconds


def timed(label: str, fn, frames: int, results: dict) -> None:
    start = time.perf_counter()
    seconds = fn()
    wall = time.perf_counter() - start
    results[label] = {"frames_per_s": frames / wall, "ms_per_frame": {k: 1000 * v / frames for k, v in seconds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1, help="vaseg's frames per model call (predict's default: 1)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    parser.add_argument("--checkpoint", type=Path, help="weights for both models (a best.pt; default: fresh weights)")
    parser.add_argument("--model", type=Path, help="full-resolution ONNX model (default: fresh weights)")
    parser.add_argument("--half-model", type=Path, help="ONNX model trained at --scale 0.5 (default: fresh weights)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vaseg-predict-bench-"))
    paths = write_frames(root / "frames", args.frames)
    full, half = export_models(root, args.checkpoint)
    full, half = args.model or full, args.half_model or half
    warm = paths[: min(len(paths), args.batch_size)]
    vaseg_run(full, warm, root / "warm.jsonl", args.batch_size, args.threads)  # page cache and onnxruntime warm-up
    results: dict = {}
    n = len(paths)
    timed("per-frame loop (live demo), fp32", lambda: per_frame_loop(full, paths, root / "loop.jsonl", args.threads), n, results)
    timed(f"vaseg predict, fp32, batch {args.batch_size}", lambda: vaseg_run(full, paths, root / "a.jsonl", args.batch_size, args.threads), n, results)
    timed("per-frame loop (live demo), --scale 0.5 model", lambda: per_frame_loop(half, paths, root / "loop2.jsonl", args.threads), n, results)
    timed(f"vaseg predict, --scale 0.5 model, batch {args.batch_size}", lambda: vaseg_run(half, paths, root / "b.jsonl", args.batch_size, args.threads), n, results)
    base = results["per-frame loop (live demo), fp32"]["frames_per_s"]
    table = Table(title=f"Prediction throughput, {n} PNG frames at 400x640, CPU")
    for column in ("pipeline", "frames/s", "x loop fp32", *(f"{s} ms" for s in STAGES)):
        table.add_column(column, justify="left" if column == "pipeline" else "right")
    for label, r in results.items():
        stages = [f"{r['ms_per_frame'][s]:.1f}" for s in STAGES]
        table.add_row(label, f"{r['frames_per_s']:.2f}", f"{r['frames_per_s'] / base:.2f}", *stages)
    Console(width=200).print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
