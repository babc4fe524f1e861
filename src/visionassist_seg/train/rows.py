"""Rows of parquet shards as numpy arrays: one sample at a time from its own pages, or whole slices.

vaseg's writer stores one data page per row and column, so `ParquetReader.row` decodes a
sample straight from its pages (`RowPages`, via `parquet.reader`). Shards written otherwise
(other writers' pages, sub-slices of large row groups, the legacy flat-list format) are
read a slice at a time, directly where `parquet.reader` supports the encoding and with
pyarrow otherwise, and served from a small cache of decoded slices.
"""

from __future__ import annotations

import mmap
import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from visionassist_seg.data.reader import column_to_numpy
from visionassist_seg.data.schema import ARRAY_COLUMNS, ARRAY_DTYPES, ARRAY_SHAPES
from visionassist_seg.errors import VasegError
from visionassist_seg.train.augment import Sample
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
from visionassist_seg.train.split_index import MAX_SLICE_ROWS, RowSlice

# Decoded slices a reader keeps for the pyarrow/whole-slice path, in rows (3.5 MB each at
# 400x640): enough for the slices one shuffled window of batches draws from.
CACHED_ROWS = 128
# Page tables a reader keeps (a few kB per row each, no pixel data).
CACHED_PAGE_TABLES = 256


def _remember(cache: OrderedDict, key, value, limit: int) -> None:
    """Add ``key`` to an insertion-ordered cache, dropping the oldest entries beyond ``limit``."""
    cache[key] = value
    while len(cache) > limit:
        cache.popitem(last=False)


class ParquetReader:
    """Reads rows of row slices as numpy arrays; keeps shards open (one reader per process).

    `row` serves one sample: decoded from its own data pages when the shard was written
    one page per row (vaseg's writer), else from its slice read whole by `read` and kept
    while it is among the last `CACHED_ROWS` rows' slices. `read` decodes whole row
    groups' array columns with `pages.read_chunk` (no nested-list reconstruction) and
    falls back to pyarrow for a shard the direct decoder does not support.
    """

    def __init__(self) -> None:
        self._files: dict[str, object] = {}
        self._fds: dict[str, int] = {}
        self._maps: dict[str, mmap.mmap] = {}
        self._direct: dict[str, bool] = {}  # per shard: whether `read` could decode it directly
        self._pages: OrderedDict[RowSlice, RowPages | None] = OrderedDict()
        self._blocks: OrderedDict[RowSlice, dict[str, np.ndarray]] = OrderedDict()
        self._scratch: dict[str, np.ndarray] = {}  # shared by every `RowPages` of this reader

    def row(self, piece: RowSlice, k: int, dist_out: np.ndarray | None = None) -> tuple[Sample, bool]:
        """Return (row ``k`` of ``piece``, whether it needs gamma + CLAHE at load time); see `RowPages.row`.

        The arrays may be views of a page or of a scratch buffer: valid until the next call.
        """
        if piece not in self._pages:
            _remember(self._pages, piece, self.row_pages(piece), CACHED_PAGE_TABLES)
        pages = self._pages[piece]
        if pages is not None:
            try:
                return pages.row(k, dist_out), bool(pages.enhance[k])
            except Unsupported:
                self._pages[piece] = None
        if piece not in self._blocks:
            while self._blocks and sum(p.rows for p in self._blocks) + piece.rows > CACHED_ROWS:
                self._blocks.popitem(last=False)
            self._blocks[piece] = self.read(piece)
        a = self._blocks[piece]
        return Sample(a["image"][k], a["label"][k], a["spatial_weights"][k], a["dist_map"][k]), bool(a["enhance"][k])

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
        return self._read(piece, direct=True)

    def read_with_pyarrow(self, piece: RowSlice) -> dict[str, np.ndarray]:
        """Return what `read` returns, decoded by pyarrow alone (the fallback `read` uses)."""
        return self._read(piece, direct=False)

    def _read(self, piece: RowSlice, direct: bool) -> dict[str, np.ndarray]:
        out = empty_block(piece.rows)
        parquet = self._file(piece.path)
        rows = slice(0, piece.rows)
        whole_group = piece.rows == parquet.metadata.row_group(piece.row_group).num_rows
        direct = direct and whole_group and self._direct.get(piece.path, True) and self._read_direct(parquet, piece, out, rows)
        columns = ([] if direct else list(ARRAY_COLUMNS)) + ([] if piece.legacy else ["preprocessed"])
        if columns and whole_group:
            # No Arrow thread pool: its idle threads slow torch's OpenMP kernels in the same
            # process (loader workers=0); parallelism comes from worker processes.
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
        return out

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
        if not self._direct.get(piece.path, True):
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
        return RowPages(columns, enhance, self._scratch)

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
    for BYTE_STREAM_SPLIT floats), valid until the next `row` call of any `RowPages` sharing the scratch: no block-sized copy
    of the row group is ever made. vaseg's uint8 columns (identity dictionary, 8-bit
    indices) and older shards' (INT32 BYTE_STREAM_SPLIT) both come back as views of the
    page's bytes.
    """

    def __init__(self, columns: dict[str, _ColumnPages], enhance: np.ndarray, scratch: dict[str, np.ndarray] | None = None) -> None:
        self.columns = columns
        self.enhance = enhance
        self._scratch = {} if scratch is None else scratch

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
