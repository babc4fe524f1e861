"""The end of a training run: best.pt exported to best.onnx, and the loss, IoU and overlay plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from visionassist_seg.console import console
from visionassist_seg.ops.intensity import enhance_image
from visionassist_seg.settings import Settings
from visionassist_seg.train.checkpoint import load_checkpoint
from visionassist_seg.train.export import DeviceModel, export_onnx
from visionassist_seg.train.model import ShallowNet
from visionassist_seg.train.split_index import SplitIndex
from visionassist_seg.train.weights import load_state

OVERLAY_IMAGES = 4


def export_best(run_dir: Path, history: list[dict], val_index: SplitIndex, settings: Settings) -> Path | None:
    """Export best.pt to best.onnx and draw the plots; return the ONNX path (None if no epoch finished)."""
    best_path = run_dir / "best.pt"
    if not history or not best_path.is_file():
        return None
    state = load_checkpoint(best_path, torch.device("cpu"))
    model = ShallowNet(dropout=settings.train.dropout)
    load_state(model, state["model"], best_path)
    model.eval()
    scale = float(state["model_config"]["scale"])
    images, labels = overlay_samples(val_index)
    onnx_path = run_dir / "best.onnx"
    # Checked on real validation frames: what the device will feed it.
    difference = export_onnx(model, onnx_path, scale=scale, seed=settings.seed, frames=images[:2, None].astype(np.float32))
    console.print(f"Exported {onnx_path} (onnxruntime vs torch max logit difference {difference:.1e}).", highlight=False)
    from visionassist_seg.train.plots import plot_curves, plot_overlays

    plots = run_dir / "plots"
    plot_curves(history, plots)
    with torch.no_grad():
        predictions = DeviceModel(model, scale)(torch.from_numpy(images[:, None].astype(np.float32))).argmax(1).numpy()
    plot_overlays(images, labels, predictions, plots / "overlays.png")
    return onnx_path


def overlay_samples(index: SplitIndex) -> tuple[np.ndarray, np.ndarray]:
    """Return the first `OVERLAY_IMAGES` images (enhanced as the loader does) and labels of ``index``.

    Reads only those rows' image and label columns from the first slice's row group.
    """
    from visionassist_seg.data.reader import read_batches

    piece = index.slices[0]
    rows = min(OVERLAY_IMAGES, piece.rows)
    columns = ["image", "label"] + ([] if piece.legacy else ["preprocessed"])
    batches = read_batches(Path(piece.path), columns=columns, batch_size=piece.start + rows, row_groups=[piece.row_group])
    try:
        batch = next(batches)
    finally:
        batches.close()
    window = slice(piece.start, piece.start + rows)
    images = batch["image"][window].astype(np.uint8)  # legacy shards may store int64
    labels = batch["label"][window].astype(np.uint8)
    enhance = [True] * rows if piece.legacy else [not flag for flag in batch["preprocessed"][window]]
    images = np.stack([enhance_image(np.ascontiguousarray(im)) if flag else im for im, flag in zip(images, enhance)])
    return images, labels
