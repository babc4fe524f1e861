"""Samples as the model sees them, in numpy: `prepare_sample` (enhance, resize) and a split's batches in order.

`loader.PupilDataset` prepares every training and validation item with `prepare_sample`;
`split_batches` reads a split the same way at full size without torch, for scoring an
ONNX model (`vaseg evaluate`).
"""

from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from visionassist_seg.ops.intensity import enhance_image
from visionassist_seg.ops.sample import HEIGHT, WIDTH
from visionassist_seg.train.augment import Sample
from visionassist_seg.train.rows import ParquetReader
from visionassist_seg.train.split_index import SplitIndex


def prepare_sample(sample: Sample, enhance: bool, size: tuple[int, int]) -> Sample:
    """Return the sample with legacy enhancement applied and every array resized to ``size`` (height, width).

    Image and distance maps are resized bilinearly (the exported ONNX model resizes the
    image the same way). The label takes the class covering at least half of each output
    pixel (area average, then >= 0.5) and the weights their area average: both stay
    centred on the image pixels, where nearest-neighbour would shift them by up to half
    a source block (1.5 px at scale 0.25, enough to cap pupil IoU near 0.91).
    """
    image = enhance_image(np.ascontiguousarray(sample.image)) if enhance else sample.image
    if size == image.shape:
        return Sample(image, sample.label, sample.spatial_weights, sample.dist_map)
    height, width = size
    dsize = (width, height)
    label = cv2.resize(sample.label.astype(np.float32), dsize, interpolation=cv2.INTER_AREA) >= 0.5
    return Sample(
        image=cv2.resize(np.ascontiguousarray(image), dsize, interpolation=cv2.INTER_LINEAR),
        label=label.astype(np.uint8),
        spatial_weights=cv2.resize(np.ascontiguousarray(sample.spatial_weights), dsize, interpolation=cv2.INTER_AREA),
        dist_map=np.stack(
            [cv2.resize(np.ascontiguousarray(c), dsize, interpolation=cv2.INTER_LINEAR) for c in sample.dist_map]
        ),
    )


def split_batches(index: SplitIndex, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (images, labels) of ``index``'s rows in split order, ``batch_size`` rows at a time, at 400x640.

    The images are prepared as `loader.PupilDataset` prepares a validation item at scale 1
    (legacy shards enhanced); each batch is a fresh pair of uint8 arrays.

    Shape:
        images: (N, 400, 640) uint8; labels: (N, 400, 640) uint8
    """
    reader = ParquetReader()
    rows = [(piece, k) for piece in index.slices for k in range(piece.rows)]
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            images = np.empty((len(chunk), HEIGHT, WIDTH), np.uint8)
            labels = np.empty((len(chunk), HEIGHT, WIDTH), np.uint8)
            for i, (piece, k) in enumerate(chunk):
                sample, enhance = reader.row(piece, k)
                # The row's arrays are valid until the next read: copied into the batch at once.
                sample = prepare_sample(sample, enhance, (HEIGHT, WIDTH))
                np.copyto(images[i], sample.image, casting="unsafe")
                np.copyto(labels[i], sample.label, casting="unsafe")
            yield images, labels
    finally:
        reader.close()
