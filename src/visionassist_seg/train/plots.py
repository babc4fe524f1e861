"""Training plots (PNG, matplotlib Agg): loss and IoU curves, prediction overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(rows: list[dict], out_dir: Path) -> list[Path]:
    """Write ``loss.png`` (train and validation loss) and ``iou.png`` (pupil IoU, mIoU) per epoch; return the paths."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    epochs = [int(r["epoch"]) for r in rows]
    paths = []
    for name, keys, ylabel in (
        ("loss.png", ("train_loss", "val_loss"), "loss"),
        ("iou.png", ("val_pupil_iou", "val_miou"), "IoU"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4))
        for key in keys:
            ax.plot(epochs, [float(r[key]) for r in rows], marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=100)
        plt.close(fig)
        paths.append(out_dir / name)
    return paths


def plot_overlays(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray, path: Path) -> Path:
    """Write one PNG with a row per image: the frame, predicted pupil (red), true pupil outline (green).

    Shape:
        images: (N, H, W) uint8; labels: (N, H, W) 0/1; predictions: (N, H, W) 0/1
    """
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    count = len(images)
    fig, axes = plt.subplots(count, 1, figsize=(6, 3.8 * count), squeeze=False)
    for ax, image, label, prediction in zip(axes[:, 0], images, labels, predictions):
        rgb = np.repeat(image[..., None], 3, axis=2).astype(np.float32) / 255.0
        rgb[prediction == 1] = 0.5 * rgb[prediction == 1] + 0.5 * np.array([1.0, 0.0, 0.0])
        ax.imshow(rgb)
        if label.any():
            ax.contour(label, levels=[0.5], colors="lime", linewidths=1)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
