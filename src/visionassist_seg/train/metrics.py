"""Segmentation metrics: per-class IoU accumulated over a split, mIoU and the challenge score."""

from __future__ import annotations

import torch

MEGABYTE = 2**20
BYTES_PER_PARAMETER = 4


class IoUAccumulator:
    """Sums per-class intersections and unions over every batch of a split.

    IoU is computed from the totals (not averaged per batch or per image), as the
    OpenEDS challenge does. A class absent from both predictions and targets of the
    whole split has IoU 1 (nothing to get wrong).
    """

    def __init__(self, num_classes: int = 2) -> None:
        self.num_classes = num_classes
        self.intersection = torch.zeros(num_classes, dtype=torch.float64)
        self.union = torch.zeros(num_classes, dtype=torch.float64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch of class maps.

        Shape:
            prediction: (N, H, W) integer class; target: (N, H, W) integer class
        """
        prediction = prediction.long().flatten()
        target = target.long().flatten()
        # bincount over (pred, target) pairs: one pass, no per-class loop on the device.
        pairs = torch.bincount(prediction * self.num_classes + target, minlength=self.num_classes**2)
        confusion = pairs.reshape(self.num_classes, self.num_classes).double().cpu()
        hits = confusion.diagonal()
        self.intersection += hits
        self.union += confusion.sum(dim=0) + confusion.sum(dim=1) - hits

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
