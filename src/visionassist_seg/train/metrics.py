"""The training loop's IoU accumulator: counts a batch on its device, sums in `scores.IoUSums`."""

from __future__ import annotations

import torch

from visionassist_seg.train.scores import IoUSums


class IoUAccumulator(IoUSums):
    """`IoUSums` fed with torch class maps: the confusion counts are taken on the tensors' device."""

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch of class maps.

        Shape:
            prediction: (N, H, W) integer class; target: (N, H, W) integer class
        """
        prediction = prediction.long().flatten()
        target = target.long().flatten()
        # bincount over (pred, target) pairs: one pass, no per-class loop on the device.
        pairs = torch.bincount(prediction * self.num_classes + target, minlength=self.num_classes**2)
        self.add(pairs.cpu().numpy())
