"""A shard's columns: fixed-shape arrays and per-row values, with their parquet schema and encodings.

Every array column is a fixed-shape nested list (HF ``Array2D``/``Array3D``) without
nulls, so the repetition and definition levels of every row are the same bytes: they
are encoded once per column (`ArrayColumn.levels`) and each row's values are written
into a reusable page buffer (`ArrayColumn.encode_values`). Float values use PLAIN or
BYTE_STREAM_SPLIT; uint8 values use RLE_DICTIONARY over the identity dictionary 0..255.
`ValueColumn`s (one string or bool a row) are written PLAIN, one page per row group.
"""

from __future__ import annotations

import functools
import io
import math
import struct
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from visionassist_seg.parquet import thrift
from visionassist_seg.parquet.byte_streams import split_streams
from visionassist_seg.parquet.thrift import (
    BOOLEAN,
    BYTE_ARRAY,
    CONVERTED_LIST,
    CONVERTED_UINT_8,
    CONVERTED_UTF8,
    FLOAT,
    INT32,
    OPTIONAL,
    REPEATED,
    SCHEMA_ELEMENT,
    varint,
)

# Value encodings an `ArrayColumn` can use, and the parquet encoding each writes in data pages.
PLAIN, BYTE_STREAM_SPLIT, DICTIONARY = "plain", "byte_stream_split", "dictionary"
_PAGE_ENCODINGS = {PLAIN: thrift.PLAIN, BYTE_STREAM_SPLIT: thrift.BYTE_STREAM_SPLIT, DICTIONARY: thrift.RLE_DICTIONARY}
# The dictionary of every DICTIONARY column: index i stands for the value i, so the
# indices are the uint8 values themselves.
IDENTITY_DICTIONARY = np.arange(256, dtype="<i4")


def rle_levels(runs: Sequence[tuple[int, int]], bit_width: int) -> bytes:
    """Return levels in parquet's RLE/bit-packing hybrid, as RLE runs of ``(value, count)``."""
    width = (bit_width + 7) // 8
    return b"".join(varint(count << 1) + value.to_bytes(width, "little") for value, count in runs if count)


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
        return FLOAT if self.dtype == np.float32 else INT32

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
        elif self.physical == INT32:
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
                SCHEMA_ELEMENT.encode(repetition_type=OPTIONAL, name=name, num_children=1, converted_type=CONVERTED_LIST, logicalType=_LIST_LOGICAL)
            )
            elements.append(SCHEMA_ELEMENT.encode(repetition_type=REPEATED, name="list", num_children=1))
        if self.physical == INT32:
            leaf = SCHEMA_ELEMENT.encode(
                type=INT32, repetition_type=OPTIONAL, name="element", converted_type=CONVERTED_UINT_8, logicalType=_UINT8_LOGICAL
            )
        else:
            leaf = SCHEMA_ELEMENT.encode(type=FLOAT, repetition_type=OPTIONAL, name="element")
        elements.append(leaf)
        return elements


@functools.lru_cache(maxsize=16)
def _row_levels(shape: tuple[int, ...], max_definition: int) -> bytes:
    # Cached: built value run by value run they cost milliseconds a column, and every
    # shard writer needs the same ones.
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
    run = varint((packed // 8) << 1 | 1) + bytes(packed) if packed else b""
    return bytes([8]) + run + bytes([1 << 1, 0]) * tail


_LIST_LOGICAL = thrift.LOGICAL_TYPE.encode(LIST=thrift.LIST_TYPE.encode())
_UINT8_LOGICAL = thrift.LOGICAL_TYPE.encode(INTEGER=thrift.INT_TYPE.encode(bitWidth=8, isSigned=False))


def _bit_width(max_level: int) -> int:
    return max(1, int(max_level).bit_length())


_STRING_LOGICAL = thrift.LOGICAL_TYPE.encode(STRING=thrift.STRING_TYPE.encode())
# The value types a `ValueColumn` holds, and their parquet physical types.
STRING, BOOL = "string", "bool"
_VALUE_PHYSICAL = {STRING: BYTE_ARRAY, BOOL: BOOLEAN}


@dataclass(frozen=True)
class ValueColumn:
    """A column of one value a row (``string`` or ``bool``, as named by ``dtype``); no nulls."""

    name: str
    dtype: str

    def __post_init__(self) -> None:
        if self.dtype not in _VALUE_PHYSICAL:
            raise ValueError(f"column {self.name}: unknown value type {self.dtype!r}, expected one of {sorted(_VALUE_PHYSICAL)}")

    @property
    def physical(self) -> int:
        return _VALUE_PHYSICAL[self.dtype]

    def schema_element(self) -> bytes:
        if self.dtype == STRING:
            return SCHEMA_ELEMENT.encode(
                type=BYTE_ARRAY, repetition_type=OPTIONAL, name=self.name, converted_type=CONVERTED_UTF8, logicalType=_STRING_LOGICAL
            )
        return SCHEMA_ELEMENT.encode(type=BOOLEAN, repetition_type=OPTIONAL, name=self.name)

    def plain(self, values: Sequence) -> bytes:
        """Return ``values`` PLAIN-encoded: length-prefixed UTF-8 strings, or bools packed 8 a byte."""
        if self.dtype == BOOL:
            return np.packbits(np.asarray(values, dtype=bool), bitorder="little").tobytes()
        out = io.BytesIO()
        for value in values:
            data = value.encode()
            out.write(struct.pack("<i", len(data)))
            out.write(data)
        return out.getvalue()
