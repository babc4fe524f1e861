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
import mmap
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch

from visionassist_seg.data.reader import column_to_numpy
from visionassist_seg.data.schema import ARRAY_COLUMNS, ARRAY_DTYPES, ARRAY_SHAPES, MANIFEST, SPLITS
from visionassist_seg.data.splits import SplitFiles, incomplete_shard_sets, resolve_local
from visionassist_seg.errors import VasegError
from visionassist_seg.ops.intensity import enhance_image
from visionassist_seg.ops.sample import HEIGHT, WIDTH
from visionassist_seg.parquet.byte_streams import unsplit_streams
from visionassist_seg.parquet.reader import (
    DECODED_ENCODINGS,
    DICTIONARY_ENCODINGS,
    ColumnChunk,
    Dictionary,
    Page,
    Unsupported,
    dictionary_decode,
    locate_chunk,
    open_codec,
    page_table,
    page_values,
    read_chunk,
    read_dictionary,
)
from visionassist_seg.parquet.thrift import BYTE_STREAM_SPLIT as ENCODING_BYTE_STREAM_SPLIT
from visionassist_seg.train.augment import Sample, augment
from visionassist_seg.train.model import scaled_size

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

    The splits are the ones `datasets.load_dataset(dataset_dir)` sees (the card's
    ``configs:``, else its default patterns such as ``data/{split}-*`` or ``data/{split}/*``).

    Raises:
        VasegError: a split is missing or has no rows, or the shard set is incomplete
            (``-of-N`` names or the manifest list files that are not there).
    """
    dataset_dir = Path(dataset_dir)
    found = resolve_local(dataset_dir)
    for split in SPLITS:
        if not found.files.get(split):
            raise VasegError(
                f"No {split} shards in {dataset_dir} (splits found: {', '.join(found.files) or 'none'}; resolved "
                f"from {found.source}). Pass --dataset a folder `datasets.load_dataset` reads as train and "
                "validation splits (e.g. `vaseg precompute` output: data/train-*.parquet, data/validation-*.parquet) "
                "or --hf-repo a Hub dataset."
            )
    missing = incomplete_shard_sets(found) + _check_manifest(dataset_dir, found)
    if missing:
        raise VasegError(
            f"The dataset in {dataset_dir} is incomplete: {'; '.join(missing)}. Training on what is left would "
            "silently use less data: restore the missing files (download the dataset again, or rerun "
            "`vaseg precompute` into an empty folder)."
        )
    indexes = {split: index_split(split, found.paths(split), limit) for split in SPLITS}
    for split, index in indexes.items():
        if index.rows == 0:
            raise VasegError(
                f"The {split} split of {dataset_dir} has 0 rows ({len(found.files[split])} shard(s)). Training "
                "needs rows in both train and validation: rerun `vaseg precompute`, or check the raw "
                f"{split} folder has labelled images."
            )
    return indexes


def _check_manifest(dataset_dir: Path, found: SplitFiles) -> list[str]:
    """Return one sentence per shard the manifest lists that is not part of its resolved split ([] without a manifest).

    Raises:
        VasegError: the manifest is unreadable or not a vaseg manifest.
    """
    path = dataset_dir / MANIFEST
    if not path.is_file():
        return []
    try:
        manifest = json.loads(path.read_text())
        listed = [(split, str(shard["file"])) for split, entry in manifest["splits"].items() for shard in entry["shards"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise VasegError(f"Cannot read {path} ({type(err).__name__}: {err}). Fix or delete the manifest and rerun.") from None
    if manifest.get("format") not in (None, "vaseg-precomputed"):
        raise VasegError(f"{path} has format {manifest.get('format')!r}, expected 'vaseg-precomputed'.")
    problems = []
    for split, file in listed:
        if file in found.files.get(split, ()):
            continue
        where = "is missing" if not (dataset_dir / file).is_file() else f"is not part of split '{split}' ({found.source})"
        problems.append(f"{MANIFEST} lists {file}, which {where}")
    return problems


class ParquetReader:
    """Reads row slices as numpy arrays; keeps shards open (one set per process).

    Array columns of whole row groups go through `pages.read_chunk` (no nested-list
    reconstruction); a shard the direct decoder does not support is read with pyarrow.
    """

    def __init__(self, direct: bool = True) -> None:
        self._files: dict[str, object] = {}
        self._fds: dict[str, int] = {}
        self._maps: dict[str, mmap.mmap] = {}
        self._direct: dict[str, bool] = {}
        self.direct = direct

    def _file(self, path: str):  # -> pyarrow.parquet.ParquetFile
        import pyarrow.parquet as pq

        if path not in self._files:
            self._files[path] = pq.ParquetFile(path)
        return self._files[path]

    def close(self) -> None:
        """Close the file descriptors and mappings of the direct decoders."""
        for mapping in self._maps.values():
            try:
                mapping.close()
            except BufferError:  # a row's page is still referenced; the mapping goes with it
                pass
        self._maps.clear()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _fd(self, path: str) -> int:
        if path not in self._fds:
            self._fds[path] = os.open(path, os.O_RDONLY)
        return self._fds[path]

    def _mapped(self, path: str) -> memoryview:
        """Return the whole shard, memory-mapped read-only (pages are decompressed straight from the page cache)."""
        if path not in self._maps:
            self._maps[path] = mmap.mmap(self._fd(path), 0, access=mmap.ACCESS_READ)
        return memoryview(self._maps[path])

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

    def row_pages(self, piece: RowSlice) -> "RowPages | None":
        """Return per-row access to the slice's array columns, or None when its pages do not allow it.

        The precompute writer stores one data page per row and column, so a row is
        decoded straight from its own pages; shards written otherwise (one page for
        many rows, a sub-slice of a row group, legacy shards) return None and are read
        with `read_into`.
        """
        parquet = self._file(piece.path)
        if piece.legacy or piece.rows != parquet.metadata.row_group(piece.row_group).num_rows:
            return None
        if not self._direct.get(piece.path, self.direct):
            return None
        shard = self._mapped(piece.path)
        columns = {}
        try:
            for name in ARRAY_COLUMNS:
                chunk = locate_chunk(parquet.metadata, parquet.schema, piece.row_group, name)
                data = shard[chunk.start : chunk.start + chunk.length]
                if len(data) != chunk.length:
                    return None  # the footer points past the end of the file: let pyarrow report it
                dictionary_page, pages = page_table(data, chunk)
                size = int(np.prod(ARRAY_SHAPES[name]))
                if len(pages) != piece.rows or any(page.count != size for page in pages):
                    return None
                if any(_page_encoding(page) not in DECODED_ENCODINGS for page in pages):
                    return None
                codec = open_codec(chunk)
                dictionary = read_dictionary(data, dictionary_page, chunk, codec)
                columns[name] = _ColumnPages(data, pages, chunk, codec, dictionary)
        except Unsupported:
            return None
        preprocessed = parquet.read_row_group(piece.row_group, columns=["preprocessed"], use_threads=False)
        enhance = ~preprocessed.column("preprocessed").to_numpy(zero_copy_only=False).astype(bool)
        return RowPages(columns, enhance)

    def _read_direct(self, parquet, piece: RowSlice, out: dict[str, np.ndarray], rows: slice) -> bool:
        try:
            for name in ARRAY_COLUMNS:
                chunk = locate_chunk(parquet.metadata, parquet.schema, piece.row_group, name)
                values = read_chunk(self._fd(piece.path), chunk)
                if values.size != piece.rows * int(np.prod(ARRAY_SHAPES[name])):
                    raise Unsupported(f"{values.size} values for {piece.rows} rows")
                out[name][rows] = values.reshape((piece.rows, *ARRAY_SHAPES[name]))  # casts int32 -> uint8
        except Unsupported:
            self._direct[piece.path] = False
            return False
        self._direct[piece.path] = True
        return True


@dataclass(frozen=True)
class _ColumnPages:
    data: memoryview  # the column chunk's bytes
    pages: list[Page]
    chunk: ColumnChunk
    codec: object  # pyarrow.Codec | None
    dictionary: Dictionary | None  # the chunk's dictionary page, decoded


def _page_encoding(page: Page) -> int:
    return page.encoding


class RowPages:
    """The array columns of one row group written one data page per row: each row decoded on its own.

    Values are returned as views of the decompressed page (or of a reused scratch buffer
    for BYTE_STREAM_SPLIT floats), valid until the next `row` call: no block-sized copy
    of the row group is ever made. vaseg's uint8 columns (identity dictionary, 8-bit
    indices) and older shards' (INT32 BYTE_STREAM_SPLIT) both come back as views of the
    page's bytes.
    """

    def __init__(self, columns: dict[str, _ColumnPages], enhance: np.ndarray) -> None:
        self.columns = columns
        self.enhance = enhance
        self._scratch: dict[str, np.ndarray] = {}

    def row(self, k: int, dist_out: np.ndarray | None = None) -> Sample:
        """Return row ``k`` of the row group as schema-shaped arrays.

        ``dist_out`` (2, 400, 640) float32, if given, receives a BYTE_STREAM_SPLIT distance
        map directly (saving a copy when it is the row's final place).

        Raises:
            Unsupported: a page turns out to hold nulls or a value count its header did not say.
        """
        arrays = {
            name: self._decode(name, column, k, dist_out if name == "dist_map" else None)
            for name, column in self.columns.items()
        }
        return Sample(arrays["image"], arrays["label"], arrays["spatial_weights"], arrays["dist_map"])

    def _decode(self, name: str, column: _ColumnPages, k: int, out: np.ndarray | None = None) -> np.ndarray:
        encoding, values = page_values(column.data, column.pages[k], column.chunk, column.codec)
        shape, dtype = ARRAY_SHAPES[name], np.dtype(ARRAY_DTYPES[name])
        count, itemsize = int(np.prod(shape)), column.chunk.dtype.itemsize
        if encoding in DICTIONARY_ENCODINGS:
            # vaseg's uint8 columns (identity dictionary, 8-bit indices) come back as a view
            # of the page, with no cast; other dictionaries are looked up.
            decoded = dictionary_decode(values, column.dictionary, count)
            return (decoded if decoded.dtype == dtype else decoded.astype(dtype)).reshape(shape)
        if len(values) != count * itemsize:
            raise Unsupported(f"{name}: {len(values)} value bytes for {count} values")
        raw = np.frombuffer(values, np.uint8)
        if encoding == ENCODING_BYTE_STREAM_SPLIT and dtype.itemsize == 1:
            # uint8 stored as INT32: the first byte stream holds the values, the others are zero.
            return raw[:count].reshape(shape)
        if encoding == ENCODING_BYTE_STREAM_SPLIT and out is not None and out.dtype == column.chunk.dtype:
            unsplit_streams(raw, out.reshape(-1))
            return out
        if encoding == ENCODING_BYTE_STREAM_SPLIT:
            scratch = self._scratch.get(name)
            if scratch is None or scratch.dtype != column.chunk.dtype:
                scratch = self._scratch[name] = np.empty(count, column.chunk.dtype)
            unsplit_streams(raw, scratch)
            values_array = scratch
        else:
            values_array = raw.view(column.chunk.dtype)
        if values_array.dtype != dtype:
            return values_array.astype(dtype).reshape(shape)
        return values_array.reshape(shape)


class _SliceRows:
    """Rows of one slice: decoded page by page when possible, else read whole with `ParquetReader.read`."""

    def __init__(self, reader: ParquetReader, piece: RowSlice) -> None:
        self.reader = reader
        self.piece = piece
        self.pages = reader.row_pages(piece)
        self.arrays: dict[str, np.ndarray] | None = None

    def row(self, k: int, dist_out: np.ndarray | None = None) -> tuple[Sample, bool]:
        """Return (row ``k`` of the slice, whether it needs gamma + CLAHE at load time); see `RowPages.row`."""
        if self.pages is not None:
            try:
                return self.pages.row(k, dist_out), bool(self.pages.enhance[k])
            except Unsupported:
                self.pages = None
        if self.arrays is None:
            self.arrays = self.reader.read(self.piece)
        a = self.arrays
        return Sample(a["image"][k], a["label"][k], a["spatial_weights"][k], a["dist_map"][k]), bool(a["enhance"][k])


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


PREFETCH_BLOCKS = 2  # blocks each loader worker prepares ahead (DataLoader prefetch_factor)


@dataclass(frozen=True)
class BlockRef:
    """What a worker sends back for a block built in the batch ring: where it is and how it splits."""

    region: int
    slot: int
    sizes: tuple[int, ...]


def batch_columns(size: tuple[int, int], full_labels: bool) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Return the per-row shape and dtype of every batch column at ``size`` (height, width)."""
    height, width = size
    columns = {
        "image": ((1, height, width), torch.uint8),
        "label": ((height, width), torch.uint8),
        "spatial_weights": ((height, width), torch.float32),
        "dist_map": ((2, height, width), torch.float32),
    }
    if full_labels:
        columns["label_full"] = ((HEIGHT, WIDTH), torch.uint8)
    return columns


class BatchRing:
    """Shared-memory block slots that loader workers fill in place and the consumer reads in place.

    Every region (one per worker process) holds ``slots`` block-sized slots, used in
    turn. A worker fills its n-th block into slot ``n % slots`` once the consumer has
    released the block that used it before (``released`` counts released blocks per
    region), and sends back only a `BlockRef`. Reusing the same pages saves what
    dominates a fresh batch on a small machine: the kernel zeroing and mapping 3.5 MB
    of new shared memory per 400x640 sample, and torch's copy of it on the way back.
    """

    def __init__(self, regions: int, slots: int, rows: int, size: tuple[int, int], full_labels: bool, shared: bool) -> None:
        self.regions, self.slots, self.rows = regions, slots, rows
        # Uninitialised: every row is written before it is read, and pages are touched only when used.
        self.arrays = {
            name: torch.empty((regions, slots, rows, *shape), dtype=dtype)
            for name, (shape, dtype) in batch_columns(size, full_labels).items()
        }
        self.released = torch.zeros(regions, dtype=torch.int64)
        if shared:
            for tensor in (*self.arrays.values(), self.released):
                tensor.share_memory_()

    def claim(self, region: int, produced: int) -> int:
        """Return the slot for a region's ``produced``-th block, waiting until the consumer has released it."""
        released = self.released.numpy()
        pause = 0.0002
        while produced - int(released[region]) >= self.slots:
            time.sleep(pause)
            pause = min(pause * 2, 0.005)  # training steps are slow: poll rarely while waiting on one
        return produced % self.slots

    def batches(self, ref: BlockRef) -> Iterator[dict[str, torch.Tensor]]:
        """Yield the batches of a block as views of its slot."""
        start = 0
        for size in ref.sizes:
            yield {name: tensor[ref.region, ref.slot, start : start + size] for name, tensor in self.arrays.items()}
            start += size

    def release(self, ref: BlockRef) -> None:
        """Let the worker of ``ref.region`` reuse the slot (blocks of a region are released in order)."""
        self.released[ref.region] += 1


class BlockDataset(torch.utils.data.Dataset):
    """Map-style dataset whose item ``i`` is block ``i`` of the epoch: a list of batches, or a `BlockRef`.

    Call `set_epoch` before iterating; training plans shuffle the row slices, evaluation
    plans keep shard order. Each batch is a dict of tensors: ``image`` (n, 1, h, w)
    uint8, ``label`` (n, h, w) uint8, ``spatial_weights`` (n, h, w) float32, ``dist_map``
    (n, 2, h, w) float32, and with ``full_labels`` also ``label_full`` (n, 400, 640) uint8.
    With a `BatchRing` attached (see `iterate_batches`), item ``i`` is written into the
    ring and only its `BlockRef` is returned.
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
        self.ring: BatchRing | None = None
        self._produced = 0  # blocks this process has written into the ring since it was attached
        self._reader: ParquetReader | None = None
        self.set_epoch(0)

    def __getstate__(self) -> dict:
        # Sent to spawned loader workers: without open files.
        state = dict(self.__dict__)
        state["_reader"] = None
        return state

    def set_epoch(self, epoch: int) -> None:
        """Plan the blocks of ``epoch`` (shuffled from ``seed`` and ``epoch`` when training)."""
        self.epoch = epoch
        slices = list(self.index.slices)
        if self.train:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(slices))
            slices = [slices[i] for i in order]
        target = self._block_target()
        self.blocks = []
        current: list[RowSlice] = []
        for piece in slices:
            current.append(piece)
            if sum(p.rows for p in current) >= target:
                self.blocks.append(current)
                current = []
        if current:
            self.blocks.append(current)

    def _block_target(self) -> int:
        return self.batch_size * BATCHES_PER_BLOCK if self.train else self.batch_size

    def max_block_rows(self) -> int:
        """Return the most rows a block can have in any epoch (slices are added until the target is reached)."""
        largest = max((piece.rows for piece in self.index.slices), default=0)
        return min(self.index.rows, self._block_target() - 1 + largest)

    def attach_ring(self, workers: int) -> BatchRing:
        """Attach a new batch ring for ``workers`` loader processes (0: this process)."""
        self.ring = None  # free the old ring before making the new one
        slots = PREFETCH_BLOCKS + 1 if workers > 0 else 1
        self.ring = BatchRing(max(1, workers), slots, self.max_block_rows(), self.size, self.full_labels, shared=workers > 0)
        self._produced = 0
        return self.ring

    def batch_sizes(self) -> list[int]:
        """Return the size of every batch of the planned epoch, in order."""
        sizes = []
        for block in self.blocks:
            rows = sum(p.rows for p in block)
            sizes.extend(len(part) for part in np.array_split(np.arange(rows), _batches_in(rows, self.batch_size)))
        return sizes

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, key: int | tuple[int, int]) -> list[dict[str, torch.Tensor]] | BlockRef:
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        if epoch != self.epoch:
            self.set_epoch(epoch)
        if self._reader is None:
            self._reader = ParquetReader()
        rows = sum(piece.rows for piece in self.blocks[i])
        rng = np.random.default_rng([self.seed, self.epoch, i])
        order = rng.permutation(rows) if self.train else np.arange(rows)
        groups = np.array_split(order, _batches_in(rows, self.batch_size))
        sizes = tuple(len(group) for group in groups)
        if self.ring is not None:
            info = torch.utils.data.get_worker_info()
            region = info.id if info is not None else 0
            ref = BlockRef(region, self.ring.claim(region, self._produced), sizes)
            self._produced += 1
            out = {name: tensor[ref.region, ref.slot, :rows] for name, tensor in self.ring.arrays.items()}
        else:
            out = {name: _tensor((rows, *shape), dtype) for name, (shape, dtype) in batch_columns(self.size, self.full_labels).items()}
        self._fill(self.blocks[i], [int(row) for group in groups for row in group], out, rng)
        if self.ring is not None:
            return ref
        starts = np.cumsum((0, *sizes))
        return [{name: tensor[a:b] for name, tensor in out.items()} for a, b in zip(starts[:-1], starts[1:])]

    def _fill(self, block: list[RowSlice], order: list[int], out: dict[str, torch.Tensor], rng: np.random.Generator) -> None:
        """Write the block's rows, in ``order``, into ``out`` (prepared and, when training, augmented)."""
        sources = [_SliceRows(self._reader, piece) for piece in block]
        owner = [(source, k) for source in sources for k in range(source.piece.rows)]
        image, label, weights, dist = (out[name].numpy() for name in ("image", "label", "spatial_weights", "dist_map"))
        label_full = out["label_full"].numpy() if "label_full" in out else None
        full_size = self.size == (HEIGHT, WIDTH)
        for position, row in enumerate(order):
            source, k = owner[row]
            # At full size the distance map is decoded into its place (flipped there if need be).
            sample, enhance = source.row(k, dist[position] if full_size else None)
            if label_full is not None:
                label_full[position] = sample.label
            sample = prepare_sample(sample, enhance, self.size)
            if self.train:
                sample = augment(sample, rng, self.scale)
            copy_into(image[position, 0], sample.image)
            copy_into(label[position], sample.label)
            copy_into(weights[position], sample.spatial_weights)
            for channel in range(2):
                copy_into(dist[position, channel], sample.dist_map[channel])


def copy_into(dst: np.ndarray, src: np.ndarray) -> None:
    """Copy a 2-D array into ``dst`` (casting); a left-right mirrored view goes through ``cv2.flip``.

    numpy copies a reversed view element by element, about 3x slower than OpenCV's flip,
    which also mirrors in place when ``src`` is a mirrored view of ``dst`` itself. Nothing
    is copied when ``src`` is ``dst``.
    """
    if src.__array_interface__ == dst.__array_interface__:
        return
    mirrored = src[:, ::-1]
    if src.strides[1] < 0 and src.dtype == dst.dtype and mirrored.flags.c_contiguous and dst.flags.c_contiguous:
        cv2.flip(mirrored, 1, dst=dst)
    else:
        np.copyto(dst, src, casting="unsafe")


def _tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Return an empty tensor; in a loader worker, in shared memory from the start.

    A worker's batches cross to the main process through shared memory; allocating them
    there up front saves the copy torch would otherwise make (3.5 MB per 400x640 sample).
    """
    tensor = torch.empty(shape, dtype=dtype)
    return tensor.share_memory_() if torch.utils.data.get_worker_info() is not None else tensor


def _batches_in(rows: int, batch_size: int) -> int:
    return max(1, -(-rows // batch_size))


class BatchLoader:
    """Batches of a `BlockDataset`, epoch after epoch, from worker processes kept between epochs.

    Persistent workers keep their open shards and their mappings of the batch ring (a
    worker started afresh each epoch would fault every ring page in again). Items are
    ``(epoch, block)`` keys, so workers follow the epoch planned in this process. Use it
    as a context manager, or call `close`, to stop the workers. The loader must not be
    referenced from the dataset: a reference cycle would leave it to the garbage
    collector, which may then run in a forked worker of another loader.
    """

    def __init__(self, dataset: BlockDataset, workers: int, *, pin_memory: bool = False, reuse_buffers: bool = False) -> None:
        self.dataset = dataset
        self.workers = workers
        self.pin_memory = pin_memory
        # Pinned copies are made per batch anyway; reuse would only add a copy.
        self.reuse_buffers = reuse_buffers and not pin_memory
        self._loader: torch.utils.data.DataLoader | None = None

    def __enter__(self) -> "BatchLoader":
        return self

    def __exit__(self, *exc_info) -> None:  # type: ignore[no-untyped-def]
        self.close()

    def _open(self) -> torch.utils.data.DataLoader:
        if self._loader is None:
            self.dataset.ring = None
            if self.reuse_buffers:
                self.dataset.attach_ring(self.workers)
            self._loader = torch.utils.data.DataLoader(
                self.dataset,
                batch_size=None,
                sampler=_EpochBlocks(self.dataset),
                num_workers=self.workers,
                pin_memory=self.pin_memory,
                prefetch_factor=PREFETCH_BLOCKS if self.workers > 0 else None,
                persistent_workers=self.workers > 0,
                # A private generator: building the iterator must not consume the global torch RNG.
                generator=torch.Generator().manual_seed(self.dataset.seed),
            )
        return self._loader

    def epoch(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        """Yield the batches of ``epoch`` in plan order.

        With ``reuse_buffers`` the batches are views of the dataset's `BatchRing`: a batch
        is valid only until the next one is requested (copy it to keep it). An epoch left
        unfinished stops the workers; the next epoch starts new ones.
        """
        self.dataset.set_epoch(epoch)
        loader = self._open()
        ring = self.dataset.ring if self.reuse_buffers else None
        finished = False
        try:
            for block in loader:
                if ring is None:
                    yield from block
                else:
                    yield from ring.batches(block)
                    ring.release(block)
            finished = True
        finally:
            if not finished:
                self.close()

    def close(self) -> None:
        """Stop the worker processes and drop the ring."""
        if self._loader is None:
            return
        if self.dataset.ring is not None:
            # Unblock workers waiting for a slot so that they see the shutdown and exit at once.
            self.dataset.ring.released += 1 << 40
        self._loader = None  # no reference cycle: its iterator stops and joins the workers now
        self.dataset.ring = None


class _EpochBlocks(torch.utils.data.Sampler):
    """Yields ``(epoch, block)`` keys for the dataset's current epoch."""

    def __init__(self, dataset: BlockDataset) -> None:
        self.dataset = dataset

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.dataset.epoch
        return iter([(epoch, i) for i in range(len(self.dataset))])

    def __len__(self) -> int:
        return len(self.dataset)


def iterate_batches(
    dataset: BlockDataset, epoch: int, workers: int, *, pin_memory: bool = False, reuse_buffers: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield the batches of one epoch from a `BatchLoader` made for it (see `BatchLoader.epoch`)."""
    with BatchLoader(dataset, workers, pin_memory=pin_memory, reuse_buffers=reuse_buffers) as loader:
        yield from loader.epoch(epoch)
