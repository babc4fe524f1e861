"""Pupil-centre accuracy on unseen synthetic frames: vaseg's model vs a classical dark-blob tracker.

Both see the same raw frames (fresh synthetic eyes from a seed the model never saw); the
truth is the centroid of each label's pupil pixels. vaseg: `vaseg predict`'s path
(gamma + CLAHE, the model, ellipse fit of the largest pupil region). Baseline, as simple
trackers do it: blur, threshold a little above the darkest pixel, keep the largest dark
blob, fit an ellipse to its boundary. Closed eyes (no pupil in the label) count as
misses when a method reports a pupil.

With ``--run DIR`` (a `vaseg train` run folder, e.g. `vaseg demo`'s ``run/``) it also
evaluates best.pt and best.onnx on ``--dataset`` and prints their pupil IoU and the run's
logged best, to check that they agree.

    python benchmarks/accuracy.py --run vaseg-demo/run --dataset vaseg-demo/dataset --frames 200
    python benchmarks/accuracy.py --train --frames 100      # trains a short CPU run first (minutes)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from visionassist_seg.data.synthetic import make_sample
from visionassist_seg.infer.frames import prepare_frame
from visionassist_seg.infer.geometry import fit_pupil, mask_centroid
from visionassist_seg.infer.models import load_segmenter

UNSEEN_SEED = 9_001  # the demo and tests train on seeds 0..10
BLUR = (7, 7)
DARK_MARGIN = 25  # grey levels above the darkest blurred pixel that still count as pupil


def classical_centre(raw: np.ndarray) -> tuple[float, float] | None:
    """Return the centre of the ellipse fitted to the largest dark blob of a raw frame (None if none fits)."""
    blurred = cv2.GaussianBlur(raw, BLUR, 0)
    mask = (blurred <= int(blurred.min()) + DARK_MARGIN).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    largest = max(contours, key=cv2.contourArea)
    if len(largest) < 5:
        return None
    (cx, cy), _, _ = cv2.fitEllipse(largest)
    return float(cx), float(cy)


def model_centres(model: Path, frames: list[np.ndarray], batch: int = 8) -> list[tuple[float, float] | None]:
    """Return `vaseg predict`'s pupil centre for each raw frame."""
    segmenter = load_segmenter(model, device="cpu")
    centres = []
    for start in range(0, len(frames), batch):
        prepared = [prepare_frame(frame) for frame in frames[start : start + batch]]
        logits = segmenter.logits(np.stack([canvas for canvas, _ in prepared]))
        for one, (_, placement) in zip(logits, prepared):
            fit = fit_pupil(one, placement)
            centres.append((fit.center_x, fit.center_y) if fit.pupil else None)
    return centres


def summarise(centres: list, truths: list) -> dict:
    """Return median / p90 centre error over frames with a pupil, and the detection mistakes."""
    errors = [math.dist(c, t) for c, t in zip(centres, truths) if c is not None and t is not None]
    return {
        "median_px": float(np.median(errors)) if errors else None,
        "p90_px": float(np.percentile(errors, 90)) if errors else None,
        "mean_px": float(np.mean(errors)) if errors else None,
        "missed": sum(c is None and t is not None for c, t in zip(centres, truths)),
        "false_pupils": sum(c is not None and t is None for c, t in zip(centres, truths)),
        "frames_with_pupil": sum(t is not None for t in truths),
    }


def unseen_frames(count: int) -> tuple[list[np.ndarray], list]:
    frames, truths = [], []
    for i in range(count):
        raw, label = make_sample(UNSEEN_SEED, "train", i)
        frames.append(raw)
        truths.append(mask_centroid(label == 3))
    return frames, truths


def short_training(root: Path, epochs: int) -> tuple[Path, Path]:
    """Run download, precompute and a CPU training run at scale 0.25 through the CLI; return (run, dataset)."""
    vaseg = [sys.executable, "-m", "visionassist_seg"]
    raw, dataset, run = root / "raw", root / "dataset", root / "run"
    subprocess.run([*vaseg, "download", "--source", "synthetic", "--count", "120", "--raw-dir", str(raw)], check=True)
    subprocess.run([*vaseg, "precompute", "--source", "synthetic", "--skip-download", "--raw-dir", str(raw), "--no-push",
                    "--output-dir", str(dataset), "--workers", "1"], check=True)  # fmt: skip
    subprocess.run([*vaseg, "train", "--dataset", str(dataset), "--scale", "0.25", "--epochs", str(epochs), "--batch-size", "8",
                    "--lr", "3e-3", "--device", "cpu", "--workers", "1", "--output-dir", str(run)], check=True)  # fmt: skip
    return run, dataset


def agreement(run: Path, dataset: Path) -> dict:
    """Return pupil IoU of best.pt and best.onnx on the run's validation split, and the run's logged best."""
    from visionassist_seg.infer.evaluate import evaluate_model, split_index

    index = split_index(dataset, "validation")
    scores = {name: evaluate_model(load_segmenter(run / name, device="cpu"), index).pupil_iou for name in ("best.pt", "best.onnx")}
    with (run / "metrics.csv").open() as handle:
        scores["logged_best"] = max(float(row["val_pupil_iou"]) for row in csv.DictReader(handle))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a `vaseg train` run folder (best.onnx, best.pt, metrics.csv)")
    parser.add_argument("--dataset", type=Path, help="the run's dataset, to check best.pt / best.onnx agreement")
    parser.add_argument("--train", action="store_true", help="train a short CPU run first (instead of --run)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.run is None and not args.train:
        parser.error("pass --run DIR (e.g. vaseg demo's run folder) or --train")
    run, dataset = args.run, args.dataset
    if args.train:
        run, dataset = short_training(Path(tempfile.mkdtemp(prefix="vaseg-accuracy-")), args.epochs)
    frames, truths = unseen_frames(args.frames)
    results = {
        "vaseg (best.onnx)": summarise(model_centres(run / "best.onnx", frames), truths),
        "classical dark blob": summarise([classical_centre(f) for f in frames], truths),
    }
    table = Table(title=f"Pupil-centre error on {args.frames} unseen synthetic frames (seed {UNSEEN_SEED})")
    for column in ("method", "median px", "p90 px", "mean px", "missed pupils", "false pupils (closed eyes)"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, r in results.items():
        fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
        table.add_row(name, fmt(r["median_px"]), fmt(r["p90_px"]), fmt(r["mean_px"]), f"{r['missed']}/{r['frames_with_pupil']}",
                      str(r["false_pupils"]))  # fmt: skip
    console = Console()
    console.print(table)
    if dataset is not None:
        results["agreement"] = agreement(run, dataset)
        console.print("validation pupil IoU: " + ", ".join(f"{k} {v:.6f}" for k, v in results["agreement"].items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
