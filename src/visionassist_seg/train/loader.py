"""Training and validation batches: a `PupilDataset` of samples behind a stock `torch.utils.data.DataLoader`.

One item is one sample, read from the parquet shards by `train.rows` (no Arrow cache,
no Python lists), enhanced if the shard is legacy and resized to the training scale
(`train.samples.prepare_sample`) and, when training, augmented. Item keys are
``(epoch, row)``: `EpochSampler` plans each epoch from ``(seed, epoch)`` and a sample is augmented by
``numpy.random.default_rng([seed, epoch, row])``, so batches are the same whatever the
number of workers and a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import cv2
import numpy as np
import torch

from visionassist_seg.ops.sample import HEIGHT, WIDTH
from visionassist_seg.train.augment import Sample, augment
from visionassist_seg.train.model import scaled_size
from visionassist_seg.train.rows import ParquetReader
from visionassist_seg.train.samples import prepare_sample
from visionassist_seg.train.split_index import RowSlice, SplitIndex

# Training shuffles rows within windows of this many batches (whole slices shuffled first):
# random enough for training, and a window draws on few slices, which keeps the
# whole-slice read path (legacy and other writers' shards) from decoding a slice per sample.
WINDOW_BATCHES = 2


class PupilDataset(torch.utils.data.Dataset):
    """Map-style dataset of one split: item ``(epoch, row)`` is that row, prepared (and augmented when training).

    Each item is a dict of tensors: ``image`` (1, h, w) uint8, ``label`` (h, w) uint8,
    ``spatial_weights`` (h, w) float32, ``dist_map`` (2, h, w) float32 at `scaled_size`
    (``scale``), and with ``full_labels`` also ``label_full`` (400, 640) uint8, the label
    at full size for measuring IoU as the exported model predicts.
    """

    def __init__(self, index: SplitIndex, *, train: bool, seed: int = 0, scale: float = 1.0, full_labels: bool = False) -> None:
        self.index = index
        self.train = train
        self.seed = seed
        self.scale = scale
        self.size = scaled_size(scale)
        self.full_labels = full_labels
        self._starts = np.cumsum([0] + [piece.rows for piece in index.slices])
        self._reader: ParquetReader | None = None  # opened in the process that reads (each loader worker)

    def __getstate__(self) -> dict:
        # Sent to spawned loader workers: without open files.
        return {**self.__dict__, "_reader": None}

    def __len__(self) -> int:
        return self.index.rows

    def locate(self, row: int) -> tuple[RowSlice, int]:
        """Return the slice holding split row ``row`` and the row's position in it."""
        i = int(np.searchsorted(self._starts, row, side="right")) - 1
        return self.index.slices[i], row - int(self._starts[i])

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, row = key
        if self._reader is None:
            self._reader = ParquetReader()
        piece, k = self.locate(row)
        full_size = self.size == (HEIGHT, WIDTH)
        # At full size the distance map is decoded straight into the item's array.
        dist = np.empty((2, HEIGHT, WIDTH), np.float32) if full_size else None
        sample, enhance = self._reader.row(piece, k, dist)
        item = {"label_full": torch.from_numpy(np.array(sample.label, np.uint8))} if self.full_labels else {}
        sample = prepare_sample(sample, enhance, self.size)
        if self.train:
            sample = augment(sample, np.random.default_rng([self.seed, epoch, row]), self.scale)
        return {**_as_tensors(sample, self.size, dist), **item}


def _as_tensors(sample: Sample, size: tuple[int, int], dist: np.ndarray | None) -> dict[str, torch.Tensor]:
    """Return the sample's arrays copied into fresh tensors (``dist``, if given, becomes the distance map)."""
    height, width = size
    image = np.empty((1, height, width), np.uint8)
    label = np.empty((height, width), np.uint8)
    weights = np.empty((height, width), np.float32)
    dist = np.empty((2, height, width), np.float32) if dist is None else dist
    copy_into(image[0], sample.image)
    copy_into(label, sample.label)
    copy_into(weights, sample.spatial_weights)
    for channel in range(2):
        copy_into(dist[channel], sample.dist_map[channel])
    arrays = {"image": image, "label": label, "spatial_weights": weights, "dist_map": dist}
    return {name: torch.from_numpy(array) for name, array in arrays.items()}


def copy_into(dst: np.ndarray, src: np.ndarray) -> None:
    """Copy a 2-D array into ``dst`` (casting); a left-right mirrored view goes through ``cv2.flip``.

    numpy copies a reversed view element by element, slower than OpenCV's flip, which also
    mirrors in place when ``src`` is a mirrored view of ``dst`` itself (so a flipped
    distance map decoded into its final array needs no second buffer). Nothing is copied
    when ``src`` is ``dst``.
    """
    if src.__array_interface__ == dst.__array_interface__:
        return
    mirrored = src[:, ::-1]
    if src.strides[1] < 0 and src.dtype == dst.dtype and mirrored.flags.c_contiguous and dst.flags.c_contiguous:
        cv2.flip(mirrored, 1, dst=dst)
    else:
        np.copyto(dst, src, casting="unsafe")


class EpochSampler(torch.utils.data.Sampler):
    """Yields the ``(epoch, row)`` keys of one epoch of a `PupilDataset`; call `set_epoch` before each epoch.

    Evaluation keeps shard order. Training shuffles the index's slices from ``(seed,
    epoch)``, groups them into windows of at least ``window_rows`` rows and shuffles the
    rows of window ``w`` from ``(seed, epoch, w)``.
    """

    def __init__(self, index: SplitIndex, *, shuffle: bool, seed: int, window_rows: int) -> None:
        self.index = index
        self.shuffle = shuffle
        self.seed = seed
        self.window_rows = window_rows
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.index.rows

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, int(row)) for row in self.rows()])

    def rows(self) -> np.ndarray:
        """Return the split's row numbers in this epoch's order."""
        starts = np.cumsum([0] + [piece.rows for piece in self.index.slices])
        if not self.shuffle:
            return np.arange(starts[-1])
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.index.slices))
        windows, current = [], []
        for i in order:
            current.extend(range(starts[i], starts[i + 1]))
            if len(current) >= self.window_rows:
                windows.append(current)
                current = []
        if current:
            windows.append(current)
        shuffled = [np.random.default_rng([self.seed, self.epoch, w]).permutation(rows) for w, rows in enumerate(windows)]
        return np.concatenate(shuffled) if shuffled else np.arange(0)


def make_loader(dataset: PupilDataset, batch_size: int, workers: int, *, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """Return the DataLoader training and evaluation read ``dataset`` with; its sampler is an `EpochSampler`.

    Workers are kept between epochs (they keep their open shards). Call
    ``loader.sampler.set_epoch(epoch)`` before iterating an epoch.
    """
    sampler = EpochSampler(dataset.index, shuffle=dataset.train, seed=dataset.seed, window_rows=WINDOW_BATCHES * batch_size)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        # A private generator: starting the workers must not consume the global torch RNG,
        # or a resumed run's dropout would differ from an uninterrupted one's.
        generator=torch.Generator().manual_seed(dataset.seed),
    )


@contextmanager
def stopping_workers(*loaders: torch.utils.data.DataLoader) -> Iterator[None]:
    """Stop the loaders' persistent worker processes when the ``with`` body ends, also on an error.

    A DataLoader stops persistent workers only when it is garbage collected, and a
    traceback keeps it alive; forked workers also share the run folder's lock (`flock`), so
    they must not outlive the run. PyTorch Lightning stops them the same way.
    """
    try:
        yield
    finally:
        for loader in loaders:
            iterator = loader._iterator
            if isinstance(iterator, torch.utils.data.dataloader._MultiProcessingDataLoaderIter):
                iterator._shutdown_workers()
            loader._iterator = None
