"""A parquet writer specialised to the precomputed dataset's fixed schema.

Why not ``pyarrow.parquet.ParquetWriter``: every array column is a fixed-shape nested
list (HF ``Array2D``/``Array3D``), and pyarrow derives repetition and definition levels
value by value: about 14 ms per 400x640 sample before any compression, more than all of
the preprocessing. With fixed shapes and no nulls the levels of every row are the same
bytes, so this writer encodes them once per column and writes each row as one data page
(levels + values, zstd-compressed). Float values use PLAIN or BYTE_STREAM_SPLIT; uint8
values use RLE_DICTIONARY over the identity dictionary 0..255 (see `ArrayColumn`).

The file is standard parquet (format 2.6 features, data page v1). Its key-value
metadata (``ARROW:schema`` and ``huggingface``) is taken from a file pyarrow writes
for ``hf_arrow_schema()`` (the same as ``dataset_features().arrow_schema``), so pyarrow and ``datasets`` read back exactly
the Array2D/Array3D extension types. Tests compare every file with pyarrow's reading.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from visionassist_seg import __version__
from visionassist_seg.data.byte_streams import split_streams

# parquet.thrift enums
_BOOLEAN, _INT32, _FLOAT, _BYTE_ARRAY = 0, 1, 4, 6
_REQUIRED, _OPTIONAL, _REPEATED = 0, 1, 2
_CONVERTED_UTF8, _CONVERTED_LIST, _CONVERTED_UINT_8 = 0, 3, 11
_PLAIN, _RLE, _RLE_DICTIONARY, _BYTE_STREAM_SPLIT = 0, 3, 8, 9
_ZSTD = 6
_DATA_PAGE, _DICTIONARY_PAGE = 0, 2
MAGIC = b"PAR1"

# Bytes hashed and written at a time (see ShardWriter._write).
_WRITE_BLOCK = 256 * 1024

# Thrift compact protocol type ids
_T_TRUE, _T_FALSE, _T_BYTE, _T_I32, _T_I64, _T_BINARY, _T_LIST, _T_STRUCT = 1, 2, 3, 5, 6, 8, 9, 12

# Value encodings an `ArrayColumn` can use, and the parquet encoding each writes in data pages.
PLAIN, BYTE_STREAM_SPLIT, DICTIONARY = "plain", "byte_stream_split", "dictionary"
_PAGE_ENCODINGS = {PLAIN: _PLAIN, BYTE_STREAM_SPLIT: _BYTE_STREAM_SPLIT, DICTIONARY: _RLE_DICTIONARY}
# The dictionary of every DICTIONARY column: index i stands for the value i, so the
# indices are the uint8 values themselves.
_IDENTITY_DICTIONARY = np.arange(256, dtype="<i4")


_TYPE_IDS = {
    "i32": _T_I32, "i64": _T_I64, "byte": _T_BYTE, "binary": _T_BINARY, "struct": _T_STRUCT,
    "list_i32": _T_LIST, "list_binary": _T_LIST, "list_struct": _T_LIST,
}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def thrift_struct(fields: Sequence[tuple[int, str, object]]) -> bytes:
    """Return a Thrift compact-protocol struct from ``(field id, kind, value)`` in id order.

    Kinds: ``i32``, ``i64``, ``byte``, ``bool``, ``binary`` (bytes or str), ``struct``
    (already encoded bytes), ``list_i32``, ``list_binary``, ``list_struct``.
    """
    out = bytearray()
    last = 0
    for field_id, kind, value in fields:
        if value is None:
            continue
        type_id = (_T_TRUE if value else _T_FALSE) if kind == "bool" else _TYPE_IDS[kind]
        delta = field_id - last
        if 0 < delta <= 15:
            out.append((delta << 4) | type_id)
        else:
            out.append(type_id)
            out += _varint(_zigzag(field_id))
        last = field_id
        out += _encode_value(kind, value)
    out.append(0)  # STOP
    return bytes(out)


def _encode_value(kind: str, value) -> bytes:  # type: ignore[no-untyped-def]
    if kind in ("i32", "i64"):
        return _varint(_zigzag(int(value)))
    if kind == "byte":
        return struct.pack("<b", value)
    if kind == "bool":
        return b""
    if kind == "binary":
        data = value.encode() if isinstance(value, str) else bytes(value)
        return _varint(len(data)) + data
    if kind == "struct":
        return bytes(value)
    element_kind, element_type = {
        "list_i32": ("i32", _T_I32), "list_binary": ("binary", _T_BINARY), "list_struct": ("struct", _T_STRUCT)
    }[kind]
    items = list(value)
    header = bytes([(len(items) << 4) | element_type]) if len(items) < 15 else bytes([0xF0 | element_type]) + _varint(len(items))
    return header + b"".join(_encode_value(element_kind, item) for item in items)


def rle_levels(runs: Sequence[tuple[int, int]], bit_width: int) -> bytes:
    """Return levels in parquet's RLE/bit-packing hybrid, as RLE runs of ``(value, count)``."""
    width = (bit_width + 7) // 8
    return b"".join(_varint(count << 1) + value.to_bytes(width, "little") for value, count in runs if count)


def level_runs(shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """Return the repetition-level runs of one row holding a full array of ``shape`` (nested lists).

    The first value starts the row (level 0); a value that starts a new list at depth d
    (1-based, outermost 1) has level d; every other value repeats the innermost list.
    """
    depth = len(shape)
    runs: list[tuple[int, int]] = []

    def emit(dim: int, first_level: int) -> None:
        if dim == depth - 1:
            runs.append((first_level, 1))
            runs.append((depth, shape[dim] - 1))
            return
        for index in range(shape[dim]):
            emit(dim + 1, first_level if index == 0 else dim + 1)

    emit(0, 0)
    merged: list[tuple[int, int]] = []
    for value, count in runs:
        if merged and merged[-1][0] == value:
            merged[-1] = (value, merged[-1][1] + count)
        elif count:
            merged.append((value, count))
    return merged


@dataclass(frozen=True)
class ArrayColumn:
    """A fixed-shape array column stored as nested lists; no nulls.

    ``encoding`` is how the values are written: `PLAIN`, `BYTE_STREAM_SPLIT` or, for
    uint8 only, `DICTIONARY`. uint8 is stored as INT32 (parquet has no 8-bit type), and
    DICTIONARY keeps it at one byte a value in a form every reader knows: an identity
    dictionary 0..255 once per column chunk, then per row one RLE/bit-packed hybrid run
    of 8-bit indices (the raw uint8 bytes), with the last ``size % 8`` values as RLE runs
    of one. BYTE_STREAM_SPLIT on INT32 is smaller to write but needs pyarrow >= 16 and
    duckdb >= 2.0 to read (REFERENCE section 7); shards written with it exist on disk.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype  # numpy dtype of the values: uint8 or float32
    encoding: str = PLAIN

    def __post_init__(self) -> None:
        if self.encoding not in _PAGE_ENCODINGS:
            raise ValueError(f"column {self.name}: unknown encoding {self.encoding!r}, expected one of {sorted(_PAGE_ENCODINGS)}")
        if self.encoding == DICTIONARY and self.dtype != np.uint8:
            raise ValueError(f"column {self.name}: {DICTIONARY} encoding needs uint8 values, not {self.dtype}")

    @property
    def size(self) -> int:
        """Values in one row."""
        return math.prod(self.shape)

    @property
    def physical(self) -> int:
        return _FLOAT if self.dtype == np.float32 else _INT32

    @property
    def page_encoding(self) -> int:
        """Return the parquet encoding of this column's data pages."""
        return _PAGE_ENCODINGS[self.encoding]

    @property
    def max_definition(self) -> int:
        return 1 + 2 * len(self.shape)  # optional column, then per level: repeated + optional element

    def path(self) -> list[str]:
        return [self.name] + ["list", "element"] * len(self.shape)

    def levels(self) -> bytes:
        """Return the repetition then definition levels of one row (data page v1 layout)."""
        return _row_levels(self.shape, self.max_definition)

    def page_buffer(self) -> np.ndarray:
        """Return a reusable uint8 page buffer: this column's levels, then room for one row's values.

        The parts of the values section that are the same for every row (zero high-byte
        streams, run headers) are written here once.
        """
        levels = np.frombuffer(self.levels(), dtype=np.uint8)
        if self.encoding == DICTIONARY:
            values = np.frombuffer(_identity_index_template(self.size), dtype=np.uint8)
        else:
            values = np.zeros(4 * self.size, dtype=np.uint8)
        return np.concatenate([levels, values])

    def encode_values(self, array: np.ndarray, out: np.ndarray) -> None:
        """Write one row's values into ``out``, the values section of a `page_buffer`.

        For uint8 data only the value bytes change: with BYTE_STREAM_SPLIT the first
        (low byte) stream, the three high-byte streams staying zero; with DICTIONARY the
        bit-packed run's bytes and the values of the trailing one-value RLE runs.
        """
        size = self.size
        if self.encoding == DICTIONARY:
            flat = array.reshape(-1)
            packed = size - size % 8
            start = len(out) - 2 * (size - packed) - packed
            out[start : start + packed] = flat[:packed]
            out[start + packed + 1 :: 2] = flat[packed:]
        elif self.physical == _INT32:
            if self.encoding == BYTE_STREAM_SPLIT:
                out[:size] = array.reshape(-1)
            else:
                out.view("<i4")[:] = array.reshape(-1)
        elif self.encoding == BYTE_STREAM_SPLIT:
            split_streams(np.ascontiguousarray(array, dtype="<f4"), out)
        else:
            out.view("<f4")[:] = array.reshape(-1)

    def schema_elements(self) -> list[bytes]:
        elements = []
        for level in range(len(self.shape)):
            name = self.name if level == 0 else "element"
            elements.append(
                thrift_struct(
                    [(3, "i32", _OPTIONAL), (4, "binary", name), (5, "i32", 1), (6, "i32", _CONVERTED_LIST), (10, "struct", _LIST_LOGICAL)]
                )
            )
            elements.append(thrift_struct([(3, "i32", _REPEATED), (4, "binary", "list"), (5, "i32", 1)]))
        if self.physical == _INT32:
            leaf = [(1, "i32", _INT32), (3, "i32", _OPTIONAL), (4, "binary", "element"), (6, "i32", _CONVERTED_UINT_8), (10, "struct", _UINT8_LOGICAL)]
        else:
            leaf = [(1, "i32", _FLOAT), (3, "i32", _OPTIONAL), (4, "binary", "element")]
        elements.append(thrift_struct(leaf))
        return elements


@functools.lru_cache(maxsize=16)
def _row_levels(shape: tuple[int, ...], max_definition: int) -> bytes:
    # Cached: building them value run by value run takes about 5 ms for a distance map,
    # and every shard writer needs them.
    size = math.prod(shape)
    repetition = rle_levels(level_runs(shape), 2)
    definition = rle_levels([(max_definition, size)], _bit_width(max_definition))
    return struct.pack("<i", len(repetition)) + repetition + struct.pack("<i", len(definition)) + definition


@functools.lru_cache(maxsize=16)
def _identity_index_template(size: int) -> bytes:
    """Return the values section of a DICTIONARY page for ``size`` values, with every value 0.

    Layout: bit width 8, one bit-packed run of ``size // 8`` groups of 8 one-byte indices,
    then the remaining ``size % 8`` values as RLE runs of one (``0x02``, value byte), so
    no group is padded past the page's value count.
    """
    packed, tail = size - size % 8, size % 8
    run = _varint((packed // 8) << 1 | 1) + bytes(packed) if packed else b""
    return bytes([8]) + run + bytes([1 << 1, 0]) * tail


_LIST_LOGICAL = thrift_struct([(3, "struct", thrift_struct([]))])
_UINT8_LOGICAL = thrift_struct([(10, "struct", thrift_struct([(1, "byte", 8), (2, "bool", False)]))])
_STRING_LOGICAL = thrift_struct([(1, "struct", thrift_struct([]))])


def _bit_width(max_level: int) -> int:
    return max(1, int(max_level).bit_length())


class _ChunkBuffer:
    """A column chunk being assembled in memory: page headers and compressed pages, end to end.

    The storage grows as needed and is reused for every row group, so its pages are
    not faulted in again for each one.
    """

    def __init__(self) -> None:
        self._data = np.empty(0, dtype=np.uint8)
        self.size = 0
        self.uncompressed = 0  # what the pages would take uncompressed (headers included)
        self.first_page = 0  # bytes of the first page (header included): a dictionary page's extent

    def append(self, header: bytes, page, payload_size: int) -> None:  # page: buffer
        data = np.frombuffer(page, dtype=np.uint8)
        end = self.size + len(header) + data.size
        if not self.size:
            self.first_page = end
        if end > self._data.size:
            # Powers of two: every shard's writer asks for the same sizes, which the
            # allocator hands back from earlier shards instead of fragmenting memory.
            grown = np.empty(1 << (end - 1).bit_length(), dtype=np.uint8)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : self.size + len(header)] = np.frombuffer(header, dtype=np.uint8)
        self._data[end - data.size : end] = data
        self.size = end
        self.uncompressed += len(header) + payload_size

    def view(self) -> memoryview:
        """Return the bytes assembled so far (valid until the next `append` or `clear`)."""
        return memoryview(self._data[: self.size])

    def clear(self) -> None:
        self.size = self.uncompressed = self.first_page = 0


@dataclass
class _ChunkMeta:
    path: list[str]
    physical: int
    encodings: list[int]
    num_values: int
    uncompressed: int
    compressed: int
    offset: int  # of the first data page
    dictionary_offset: int | None = None  # of the dictionary page, which precedes the data pages

    @property
    def start(self) -> int:
        """Return where the column chunk starts in the file."""
        return self.offset if self.dictionary_offset is None else self.dictionary_offset


class ShardWriter:
    """Write rows of the precomputed schema to a parquet file in row groups.

    Columns: ``image``, ``label`` (uint8 [400, 640]), ``spatial_weights`` (float32
    [400, 640]), ``dist_map`` (float32 [2, 400, 640]), ``filename`` (string),
    ``preprocessed`` (bool). ``arrays`` gives each array column's shape, dtype and
    encoding; ``key_value_metadata`` is written into the footer verbatim.

    `add_row` encodes and compresses a row's pages at once, while its arrays are still
    in the CPU cache, and keeps only the compressed pages (about a fifth of the row) in
    one reused buffer per column; `end_row_group` writes those column chunks out.
    `write_rows` does both.
    """

    def __init__(self, path: Path, arrays: Sequence[ArrayColumn], key_value_metadata: dict[bytes, bytes], compression_levels: dict[str, int]) -> None:
        import pyarrow as pa

        self._codecs = {name: pa.Codec("zstd", compression_level=level) for name, level in compression_levels.items()}
        self._arrays = list(arrays)
        self._pages = {column.name: column.page_buffer() for column in self._arrays}
        self._values_at = {column.name: len(column.levels()) for column in self._arrays}  # values follow the levels
        self._metadata = key_value_metadata
        self._row_groups: list[bytes] = []
        self._rows = 0
        self._chunks = {column.name: _ChunkBuffer() for column in self._arrays}
        self._pending_filenames: list[str] = []
        self._pending_flags: list[bool] = []
        self._file = open(path, "wb")
        self._digest = hashlib.sha256()
        self._write(MAGIC)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc_info) -> None:  # type: ignore[no-untyped-def]
        if exc_info[0] is None:
            self.close()
        else:
            self._file.close()

    def _write(self, data) -> None:  # data: bytes or any buffer
        # Hash then write in blocks that fit the CPU cache: a column chunk of a row group
        # (megabytes, long out of cache) is then read from memory once, not twice.
        view = memoryview(data)
        for start in range(0, len(view), _WRITE_BLOCK):
            block = view[start : start + _WRITE_BLOCK]
            self._digest.update(block)
            self._file.write(block)

    @property
    def sha256(self) -> str:
        """Return the hex sha256 of everything written so far (the whole file once closed)."""
        return self._digest.hexdigest()

    def write_rows(self, rows: Sequence[dict]) -> None:
        """Write ``rows`` (dicts of numpy arrays, ``filename`` str, ``preprocessed`` bool) as one row group."""
        for row in rows:
            self.add_row(row)
        self.end_row_group()

    def add_row(self, row: dict) -> None:
        """Add one row to the current row group: its pages are encoded and compressed now.

        Raises:
            ValueError: an array of ``row`` does not have its column's shape (nothing is added).
        """
        for column in self._arrays:
            if row[column.name].shape != column.shape:
                raise ValueError(f"column {column.name}: row {row['filename']} has shape {row[column.name].shape}, expected {column.shape}")
        for column in self._arrays:
            page, chunk = self._pages[column.name], self._chunks[column.name]
            column.encode_values(row[column.name], page[self._values_at[column.name] :])
            if column.encoding == DICTIONARY and not chunk.size:
                # Each column chunk (row group) starts with its own dictionary page.
                self._add_page(chunk, _IDENTITY_DICTIONARY.view(np.uint8), len(_IDENTITY_DICTIONARY), _PLAIN, column.name, _DICTIONARY_PAGE)
            self._add_page(chunk, page, column.size, column.page_encoding, column.name)
        self._pending_filenames.append(row["filename"])
        self._pending_flags.append(row["preprocessed"])

    def end_row_group(self) -> None:
        """Write the rows added since the last row group as one row group (none: nothing is written)."""
        count = len(self._pending_filenames)
        if not count:
            return
        chunks = [self._write_array_chunk(column, count) for column in self._arrays]
        chunks.append(self._write_flat_chunk("filename", _BYTE_ARRAY, _plain_strings(self._pending_filenames), count))
        chunks.append(self._write_flat_chunk("preprocessed", _BOOLEAN, _plain_bools(self._pending_flags), count))
        self._pending_filenames, self._pending_flags = [], []
        total = sum(c.uncompressed for c in chunks)
        columns = [thrift_struct([(2, "i64", c.start), (3, "struct", _column_meta(c))]) for c in chunks]
        self._row_groups.append(
            thrift_struct(
                [(1, "list_struct", columns), (2, "i64", total), (3, "i64", count), (5, "i64", chunks[0].start),
                 (6, "i64", sum(c.compressed for c in chunks)), (7, "i32", len(self._row_groups))]
            )
        )
        self._rows += count

    def _add_page(self, chunk: _ChunkBuffer, payload, num_values: int, encoding: int, codec_name: str, page_type: int = _DATA_PAGE) -> None:  # payload: buffer
        # A pyarrow Buffer rather than bytes: freed right after the copy into the chunk,
        # so the pool hands the same memory back for the next page.
        compressed = self._codecs[codec_name].compress(payload)
        if page_type == _DICTIONARY_PAGE:
            page_header = (7, "struct", thrift_struct([(1, "i32", num_values), (2, "i32", encoding)]))
        else:
            page_header = (5, "struct", thrift_struct([(1, "i32", num_values), (2, "i32", encoding), (3, "i32", _RLE), (4, "i32", _RLE)]))
        header = thrift_struct([(1, "i32", page_type), (2, "i32", len(payload)), (3, "i32", compressed.size), page_header])
        chunk.append(header, compressed, len(payload))

    def _write_chunk(self, chunk: _ChunkBuffer) -> tuple[int, int, int]:
        """Write ``chunk`` and empty it; return its (offset, uncompressed, compressed) sizes."""
        offset = self._file.tell()
        sizes = (offset, chunk.uncompressed, chunk.size)
        self._write(chunk.view())
        chunk.clear()
        return sizes

    def _write_array_chunk(self, column: ArrayColumn, count: int) -> _ChunkMeta:
        chunk = self._chunks[column.name]
        dictionary_size = chunk.first_page if column.encoding == DICTIONARY else 0
        offset, uncompressed, compressed = self._write_chunk(chunk)
        # The encodings of the chunk's pages and levels; PLAIN also covers a dictionary page.
        encodings = sorted({_PLAIN if dictionary_size else column.page_encoding, _RLE, column.page_encoding})
        meta = _ChunkMeta(column.path(), column.physical, encodings, column.size * count, uncompressed, compressed, offset)
        if dictionary_size:
            meta.dictionary_offset, meta.offset = offset, offset + dictionary_size
        return meta

    def _write_flat_chunk(self, name: str, physical: int, values: bytes, count: int) -> _ChunkMeta:
        definition = rle_levels([(1, count)], 1)
        payload = struct.pack("<i", len(definition)) + definition + values
        chunk = _ChunkBuffer()
        self._add_page(chunk, payload, count, _PLAIN, name)
        offset, uncompressed, compressed = self._write_chunk(chunk)
        return _ChunkMeta([name], physical, [_PLAIN, _RLE], count, uncompressed, compressed, offset)

    def close(self) -> None:
        """Write the footer and close the file."""
        if self._file.closed:
            return
        footer = thrift_struct(
            [
                (1, "i32", 2),
                (2, "list_struct", self._schema()),
                (3, "i64", self._rows),
                (4, "list_struct", self._row_groups),
                (5, "list_struct", [thrift_struct([(1, "binary", k), (2, "binary", v)]) for k, v in self._metadata.items()]),
                (6, "binary", f"visionassist-seg version {__version__} (shard writer)"),
            ]
        )
        self._write(footer)
        self._write(struct.pack("<i", len(footer)))
        self._write(MAGIC)
        self._file.close()

    def _schema(self) -> list[bytes]:
        elements = [thrift_struct([(4, "binary", "schema"), (5, "i32", len(self._arrays) + 2)])]
        for column in self._arrays:
            elements += column.schema_elements()
        elements.append(
            thrift_struct([(1, "i32", _BYTE_ARRAY), (3, "i32", _OPTIONAL), (4, "binary", "filename"), (6, "i32", _CONVERTED_UTF8), (10, "struct", _STRING_LOGICAL)])
        )
        elements.append(thrift_struct([(1, "i32", _BOOLEAN), (3, "i32", _OPTIONAL), (4, "binary", "preprocessed")]))
        return elements


def _column_meta(chunk: _ChunkMeta) -> bytes:
    return thrift_struct(
        [
            (1, "i32", chunk.physical),
            (2, "list_i32", chunk.encodings),
            (3, "list_binary", chunk.path),
            (4, "i32", _ZSTD),
            (5, "i64", chunk.num_values),
            (6, "i64", chunk.uncompressed),
            (7, "i64", chunk.compressed),
            (9, "i64", chunk.offset),
            (11, "i64", chunk.dictionary_offset),
        ]
    )


def _plain_strings(values: Sequence[str]) -> bytes:
    out = io.BytesIO()
    for value in values:
        data = value.encode()
        out.write(struct.pack("<i", len(data)))
        out.write(data)
    return out.getvalue()


def _plain_bools(values: Sequence[bool]) -> bytes:
    return np.packbits(np.asarray(values, dtype=bool), bitorder="little").tobytes()
