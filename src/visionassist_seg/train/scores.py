"""Segmentation scores in numpy: per-class IoU summed over a split, mIoU and the challenge score.

The training loop (through `metrics.IoUAccumulator`, which counts a batch on its device)
and `vaseg evaluate` (numpy class maps, no torch) add to the same sums, so both report
the same numbers for the same predictions.
"""

from __future__ import annotations

import numpy as np

MEGABYTE = 2**20
BYTES_PER_PARAMETER = 4


class IoUSums:
    """Sums per-class intersections and unions over every batch of a split.

    IoU is computed from the totals (not averaged per batch or per image), as the
    OpenEDS challenge does. A class absent from both predictions and targets of the
    whole split has IoU 1 (nothing to get wrong).
    """

    def __init__(self, num_classes: int = 2) -> None:
        self.num_classes = num_classes
        self.intersection = np.zeros(num_classes, dtype=np.float64)
        self.union = np.zeros(num_classes, dtype=np.float64)

    def add(self, confusion: np.ndarray) -> None:
        """Add one batch's confusion counts: ``confusion[p, t]`` pixels predicted ``p`` with target ``t``."""
        confusion = np.asarray(confusion, dtype=np.float64).reshape(self.num_classes, self.num_classes)
        hits = confusion.diagonal()
        self.intersection += hits
        self.union += confusion.sum(axis=0) + confusion.sum(axis=1) - hits

    def update(self, prediction: np.ndarray, target: np.ndarray) -> None:
        """Add one batch of class maps.

        Shape:
            prediction: (N, H, W) integer or bool class; target: (N, H, W) integer class
        """
        pairs = prediction.astype(np.int64).ravel() * self.num_classes + target.astype(np.int64).ravel()
        self.add(np.bincount(pairs, minlength=self.num_classes**2))

    def per_class(self) -> list[float]:
        """Return the IoU of each class from the accumulated totals."""
        return [
            1.0 if union == 0 else float(inter / union)
            for inter, union in zip(self.intersection.tolist(), self.union.tolist())
        ]

    def mean(self) -> float:
        """Return the mean IoU over classes (mIoU)."""
        values = self.per_class()
        return sum(values) / len(values)


def model_size_mb(parameters: int) -> float:
    """Return the float32 size of ``parameters`` weights in MB (2^20 bytes)."""
    return parameters * BYTES_PER_PARAMETER / MEGABYTE


def challenge_score(miou: float, parameters: int) -> float:
    """Return the OpenEDS challenge score ``0.5 * (min(1, 1 / S) + mIoU)`` with S the model size in MB."""
    return 0.5 * (min(1.0, 1.0 / model_size_mb(parameters)) + miou)
