"""Training batches straight from parquet shards: Arrow buffers -> numpy -> torch, in worker processes.

No Python lists and no Arrow cache on disk: each worker reads whole row groups with
pyarrow, so memory is bounded by a block of rows (about two batches) per worker and
prefetch slot. An epoch is a list of blocks; block ``i`` of epoch ``e`` is shuffled
and augmented by ``numpy.random.default_rng([seed, e, i])``, so batches are the same
whatever the number of workers, and a resumed run sees exactly the batches it would
have seen.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch

from visionassist_seg.data.reader import column_to_numpy
from visionassist_seg.data.schema import ARRAY_DTYPES, ARRAY_SHAPES, MANIFEST, list_shards
from visionassist_seg.data.shards import ARRAY_COLUMNS
from visionassist_seg.errors import VasegError
from visionassist_seg.ops.intensity import enhance_image
from visionassist_seg.ops.sample import HEIGHT, WIDTH
from visionassist_seg.train.augment import Sample, augment
from visionassist_seg.train.pages import Unsupported, locate_chunk, read_chunk

BATCHES_PER_BLOCK = 2
# A row group larger than this is read in sub-slices (bounded memory, some re-decoding).
MAX_SLICE_ROWS = 64


@dataclass(frozen=True)
class RowSlice:
    """Rows ``start:stop`` of one row group of one shard."""

    path: str
    row_group: int
    start: int
    stop: int
    legacy: bool  # no `preprocessed` column: every row needs gamma + CLAHE at load time

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass
class SplitIndex:
    """Where the rows of one split are: a list of row slices in shard order."""

    split: str
    slices: list[RowSlice] = field(default_factory=list)
    legacy_shards: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.slices)


def scaled_size(scale: float) -> tuple[int, int]:
    """Return the (height, width) of a 400x640 frame at ``scale`` (at least 8x8)."""
    return max(8, round(HEIGHT * scale)), max(8, round(WIDTH * scale))


def index_split(split: str, paths: list[Path], limit: int | None = None) -> SplitIndex:
    """Return the row slices of ``paths`` (first ``limit`` rows if given), reading only parquet footers.

    Raises:
        VasegError: a shard is unreadable or lacks a required column.
    """
    import pyarrow.parquet as pq

    index = SplitIndex(split)
    remaining = limit if limit is not None else float("inf")
    for path in paths:
        if remaining <= 0:
            break
        try:
            meta = pq.ParquetFile(path)
        except (OSError, ValueError) as err:
            raise VasegError(f"Cannot read parquet shard {path}: {err}. Delete it and rerun `vaseg precompute`.") from None
        names = meta.schema_arrow.names
        missing = [c for c in ARRAY_COLUMNS if c not in names]
        if missing:
            raise VasegError(
                f"Shard {path} lacks column(s) {', '.join(missing)}; it is not a vaseg/OpenEDS training dataset. "
                "Point --dataset at a `vaseg precompute` output folder."
            )
        legacy = "preprocessed" not in names
        if legacy:
            index.legacy_shards.append(str(path))
        for group in range(meta.metadata.num_row_groups):
            group_rows = meta.metadata.row_group(group).num_rows
            for start in range(0, group_rows, MAX_SLICE_ROWS):
                stop = int(min(group_rows, start + MAX_SLICE_ROWS, start + remaining))
                if stop <= start:
                    break
                index.slices.append(RowSlice(str(path), group, start, stop, legacy))
                remaining -= stop - start
    return index


def index_dataset(dataset_dir: Path, limit: int | None = None) -> dict[str, SplitIndex]:
    """Return the train and validation indexes of a precomputed (or legacy) dataset folder.

    Raises:
        VasegError: the folder has no ``data/*.parquet`` shards or lacks a split.
    """
    dataset_dir = Path(dataset_dir)
    shards = list_shards(dataset_dir)
    for split in ("train", "validation"):
        if not shards.get(split):
            found = ", ".join(sorted(shards)) or "none"
            raise VasegError(
                f"No {split} shards in {dataset_dir / 'data'} (splits found: {found}). Pass --dataset a folder made "
                "by `vaseg precompute` (data/train-*.parquet and data/validation-*.parquet) or --hf-repo a Hub dataset."
            )
    _check_manifest(dataset_dir)
    return {split: index_split(split, shards[split], limit) for split in ("train", "validation")}


def _check_manifest(dataset_dir: Path) -> None:
    path = dataset_dir / MANIFEST
    if not path.is_file():
        return
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise VasegError(f"Cannot read {path}: {err}. Fix or delete the manifest and rerun.") from None
    if manifest.get("format") not in (None, "vaseg-precomputed"):
        raise VasegError(f"{path} has format {manifest.get('format')!r}, expected 'vaseg-precomputed'.")


class ParquetReader:
    """Reads row slices as numpy arrays; keeps shards open (one set per process).

    Array columns of whole row groups go through `pages.read_chunk` (no nested-list
    reconstruction); a shard the direct decoder does not support is read with pyarrow.
    """

    def __init__(self, direct: bool = True) -> None:
        self._files: dict[str, object] = {}
        self._fds: dict[str, int] = {}
        self._direct: dict[str, bool] = {}
        self.direct = direct

    def _file(self, path: str):  # -> pyarrow.parquet.ParquetFile
        import pyarrow.parquet as pq

        if path not in self._files:
            self._files[path] = pq.ParquetFile(path)
        return self._files[path]

    def close(self) -> None:
        """Close the file descriptors of the direct decoder."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def read(self, piece: RowSlice) -> dict[str, np.ndarray]:
        """Return the slice's columns as schema-typed arrays plus ``enhance`` (bool per row).

        Shape: image, label, spatial_weights (n, 400, 640); dist_map (n, 2, 400, 640); enhance (n,)
        """
        out = empty_block(piece.rows)
        self.read_into(piece, out, 0)
        return out

    def read_into(self, piece: RowSlice, out: dict[str, np.ndarray], offset: int) -> None:
        """Write the slice's rows into ``out`` (arrays from `empty_block`) from row ``offset`` on.

        Decoding straight into the block saves a concatenation and a dtype-conversion pass.
        """
        parquet = self._file(piece.path)
        rows = slice(offset, offset + piece.rows)
        whole_group = piece.rows == parquet.metadata.row_group(piece.row_group).num_rows
        direct = whole_group and self._direct.get(piece.path, self.direct) and self._read_direct(parquet, piece, out, rows)
        columns = ([] if direct else list(ARRAY_COLUMNS)) + ([] if piece.legacy else ["preprocessed"])
        if columns and whole_group:
            # No Arrow thread pool: its idle threads slow torch's OpenMP kernels in the same
            # process about fivefold (measured); parallelism comes from worker processes.
            table = parquet.read_row_group(piece.row_group, columns=columns, use_threads=False)
        elif columns:
            table = _read_sub_slice(parquet, piece, columns)
        if not direct:
            for name in ARRAY_COLUMNS:
                out[name][rows] = column_to_numpy(table.column(name), name, piece.path)
        if piece.legacy:
            out["enhance"][rows] = True
        else:
            out["enhance"][rows] = ~table.column("preprocessed").to_numpy(zero_copy_only=False).astype(bool)

    def _read_direct(self, parquet, piece: RowSlice, out: dict[str, np.ndarray], rows: slice) -> bool:
        if piece.path not in self._fds:
            self._fds[piece.path] = os.open(piece.path, os.O_RDONLY)
        try:
            for name in ARRAY_COLUMNS:
                chunk = locate_chunk(parquet.metadata, parquet.schema, piece.row_group, name)
                values = read_chunk(self._fds[piece.path], chunk)
                if values.size != piece.rows * int(np.prod(ARRAY_SHAPES[name])):
                    raise Unsupported(f"{values.size} values for {piece.rows} rows")
                out[name][rows] = values.reshape((piece.rows, *ARRAY_SHAPES[name]))  # casts int32 -> uint8
        except Unsupported:
            self._direct[piece.path] = False
            return False
        self._direct[piece.path] = True
        return True


def empty_block(rows: int) -> dict[str, np.ndarray]:
    """Return uninitialised arrays for ``rows`` rows of every array column plus ``enhance``."""
    out = {name: np.empty((rows, *ARRAY_SHAPES[name]), ARRAY_DTYPES[name]) for name in ARRAY_COLUMNS}
    out["enhance"] = np.empty(rows, dtype=bool)
    return out


def _read_sub_slice(parquet, piece: RowSlice, columns: list[str]):  # -> pyarrow.Table
    import pyarrow as pa

    batches = parquet.iter_batches(
        batch_size=MAX_SLICE_ROWS, row_groups=[piece.row_group], columns=columns, use_threads=False
    )
    for i, batch in enumerate(batches):
        if i == piece.start // MAX_SLICE_ROWS:
            return pa.Table.from_batches([batch]).slice(0, piece.rows)
    raise VasegError(f"Shard {piece.path} row group {piece.row_group} is shorter than its footer says; recreate it.")


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


class BlockDataset(torch.utils.data.Dataset):
    """Map-style dataset whose item ``i`` is the list of batches made from block ``i`` of the epoch.

    Call `set_epoch` before iterating; training plans shuffle the row slices, evaluation
    plans keep shard order. Each batch is a dict of tensors: ``image`` (n, 1, h, w)
    uint8, ``label`` (n, h, w) uint8, ``spatial_weights`` (n, h, w) float32, ``dist_map``
    (n, 2, h, w) float32, and with ``full_labels`` also ``label_full`` (n, 400, 640) uint8.
    """

    def __init__(
        self,
        index: SplitIndex,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        scale: float = 1.0,
        full_labels: bool = False,
    ) -> None:
        self.index = index
        self.batch_size = batch_size
        self.train = train
        self.seed = seed
        self.scale = scale
        self.size = scaled_size(scale)
        self.full_labels = full_labels
        self.epoch = 0
        self.blocks: list[list[RowSlice]] = []
        self._reader: ParquetReader | None = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Plan the blocks of ``epoch`` (shuffled from ``seed`` and ``epoch`` when training)."""
        self.epoch = epoch
        slices = list(self.index.slices)
        if self.train:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(slices))
            slices = [slices[i] for i in order]
        target = self.batch_size * BATCHES_PER_BLOCK if self.train else self.batch_size
        self.blocks = []
        current: list[RowSlice] = []
        for piece in slices:
            current.append(piece)
            if sum(p.rows for p in current) >= target:
                self.blocks.append(current)
                current = []
        if current:
            self.blocks.append(current)

    def batch_sizes(self) -> list[int]:
        """Return the size of every batch of the planned epoch, in order."""
        sizes = []
        for block in self.blocks:
            rows = sum(p.rows for p in block)
            sizes.extend(len(part) for part in np.array_split(np.arange(rows), _batches_in(rows, self.batch_size)))
        return sizes

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> list[dict[str, torch.Tensor]]:
        if self._reader is None:
            self._reader = ParquetReader()
        rows = sum(piece.rows for piece in self.blocks[i])
        arrays = empty_block(rows)
        offset = 0
        for piece in self.blocks[i]:
            self._reader.read_into(piece, arrays, offset)
            offset += piece.rows
        rng = np.random.default_rng([self.seed, self.epoch, i])
        order = rng.permutation(rows) if self.train else np.arange(rows)
        groups = np.array_split(order, _batches_in(rows, self.batch_size))
        return [self._make_batch(arrays, rows_of_batch, rng) for rows_of_batch in groups]

    def _make_batch(self, arrays: dict[str, np.ndarray], rows: np.ndarray, rng: np.random.Generator) -> dict:
        n = len(rows)
        height, width = self.size
        batch = {
            "image": _tensor((n, 1, height, width), torch.uint8),
            "label": _tensor((n, height, width), torch.uint8),
            "spatial_weights": _tensor((n, height, width), torch.float32),
            "dist_map": _tensor((n, 2, height, width), torch.float32),
        }
        image, label, weights, dist = (batch[name].numpy() for name in ("image", "label", "spatial_weights", "dist_map"))
        for j, row in enumerate(rows):
            sample = Sample(arrays["image"][row], arrays["label"][row], arrays["spatial_weights"][row], arrays["dist_map"][row])
            sample = prepare_sample(sample, bool(arrays["enhance"][row]), self.size)
            if self.train:
                sample = augment(sample, rng, self.scale)
            image[j, 0] = sample.image
            label[j] = sample.label
            weights[j] = sample.spatial_weights
            dist[j] = sample.dist_map
        if self.full_labels:
            batch["label_full"] = _tensor((n, HEIGHT, WIDTH), torch.uint8)
            np.take(arrays["label"], rows, axis=0, out=batch["label_full"].numpy())
        return batch


def _tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Return an empty tensor; in a loader worker, in shared memory from the start.

    A worker's batches cross to the main process through shared memory; allocating them
    there up front saves the copy torch would otherwise make (3.5 MB per 400x640 sample).
    """
    tensor = torch.empty(shape, dtype=dtype)
    return tensor.share_memory_() if torch.utils.data.get_worker_info() is not None else tensor


def _batches_in(rows: int, batch_size: int) -> int:
    return max(1, -(-rows // batch_size))


def iterate_batches(
    dataset: BlockDataset, epoch: int, workers: int, *, pin_memory: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield the batches of ``epoch`` in plan order, blocks built by ``workers`` processes (0: in this process)."""
    dataset.set_epoch(epoch)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=2 if workers > 0 else None,
        # A private generator: building the iterator must not consume the global torch RNG.
        generator=torch.Generator().manual_seed(dataset.seed),
    )
    for block in loader:
        yield from block
