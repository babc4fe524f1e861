"""Direct decoding of plain, non-null parquet column chunks into flat numpy arrays.

pyarrow rebuilds every nested list level of an Array2D/Array3D column (offsets,
validity) only for the loader to flatten them again; for a 400x640 frame that costs
about 4x the decompression itself. The leaf values of a column without nulls are just
the data pages' value sections laid end to end, so this module reads the column
chunk's bytes, parses each page header (Thrift compact protocol), decompresses the
page, skips the level streams and decodes PLAIN or BYTE_STREAM_SPLIT values.

Anything else (dictionary pages, nulls, other encodings or codecs) raises
`Unsupported`, and the caller falls back to pyarrow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from visionassist_seg.data.byte_streams import unsplit_streams

PAGE_DATA, PAGE_INDEX, PAGE_DATA_V2 = 0, 1, 3
ENCODING_PLAIN, ENCODING_BYTE_STREAM_SPLIT = 0, 9
PHYSICAL_DTYPES = {"INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"), "FLOAT": np.dtype("<f4"), "DOUBLE": np.dtype("<f8")}
CODECS = {"UNCOMPRESSED": None, "ZSTD": "zstd", "SNAPPY": "snappy", "GZIP": "gzip", "BROTLI": "brotli"}


class Unsupported(Exception):
    """The column chunk uses a feature this decoder does not handle; read it with pyarrow instead."""


@dataclass(frozen=True)
class ColumnChunk:
    """Where one leaf column of one row group lies in the file, and how it is stored."""

    start: int
    length: int
    codec: str | None
    dtype: np.dtype
    max_repetition: int
    max_definition: int
    values: int


def locate_chunk(metadata, schema, row_group: int, column: str) -> ColumnChunk:
    """Return the location of the single leaf column under top-level ``column`` in ``row_group``.

    ``metadata`` and ``schema`` are a `pyarrow.parquet.ParquetFile`'s ``metadata`` and ``schema``.

    Raises:
        Unsupported: the column has several leaves, a dictionary page, or an unknown type or codec.
    """
    leaves = [i for i in range(len(schema)) if schema.column(i).path.split(".")[0] == column]
    if len(leaves) != 1:
        raise Unsupported(f"column {column} has {len(leaves)} leaf columns")
    index = leaves[0]
    chunk = metadata.row_group(row_group).column(index)
    if chunk.has_dictionary_page or chunk.physical_type not in PHYSICAL_DTYPES or chunk.compression not in CODECS:
        raise Unsupported(f"column {column}: {chunk.physical_type}, {chunk.compression}, dictionary {chunk.has_dictionary_page}")
    leaf = schema.column(index)
    return ColumnChunk(
        start=chunk.data_page_offset,
        length=chunk.total_compressed_size,
        codec=CODECS[chunk.compression],
        dtype=PHYSICAL_DTYPES[chunk.physical_type],
        max_repetition=leaf.max_repetition_level,
        max_definition=leaf.max_definition_level,
        values=chunk.num_values,
    )


@dataclass(frozen=True)
class Page:
    """One data page of a column chunk: where its body lies in the chunk's bytes and what it holds."""

    header: dict  # the parsed PageHeader (Thrift field id -> value)
    body: slice  # of the chunk's bytes
    count: int  # values (level entries) in the page


def page_table(data, chunk: ColumnChunk) -> list[Page]:
    """Return the data pages of ``chunk``, whose bytes are ``data`` (bytes-like), in order.

    Raises:
        Unsupported: a page is a dictionary page or of an unknown type, or the counts disagree.
    """
    view = memoryview(data)
    pages: list[Page] = []
    pos = total = 0
    while pos < len(view):
        header, pos = _ThriftReader(view, pos).page_header()
        page_type, compressed_size = header.get(1), header.get(3)
        body = slice(pos, pos + compressed_size)
        pos += compressed_size
        if page_type == PAGE_INDEX:
            continue
        if page_type == PAGE_DATA:
            count = header[5][1]
        elif page_type == PAGE_DATA_V2:
            count = header[8][1]
        else:
            raise Unsupported(f"page type {page_type}")
        pages.append(Page(header, body, count))
        total += count
    if total != chunk.values:
        raise Unsupported(f"pages hold {total} of {chunk.values} values")
    return pages


def page_values(data, page: Page, chunk: ColumnChunk, codec) -> tuple[int, memoryview]:
    """Return (encoding, value bytes) of one page: decompressed, level streams skipped.

    ``codec`` is ``pyarrow.Codec(chunk.codec)`` (None when uncompressed).

    Raises:
        Unsupported: the page holds nulls.
    """
    header, body = page.header, memoryview(data)[page.body]
    if header[1] == PAGE_DATA:
        _, encoding, values = _data_page_v1(header[5], body, header[2], codec, chunk)
    else:
        _, encoding, values = _data_page_v2(header[8], body, header[2], codec)
    return encoding, values


def open_codec(chunk: ColumnChunk):  # -> pyarrow.Codec | None
    """Return the pyarrow codec that decompresses ``chunk``'s pages (None when uncompressed)."""
    import pyarrow as pa

    return pa.Codec(chunk.codec) if chunk.codec else None


def read_chunk(fd: int, chunk: ColumnChunk) -> np.ndarray:
    """Return the leaf values of ``chunk`` (read from the open file descriptor ``fd``) as a flat array.

    Raises:
        Unsupported: a page is a dictionary page, holds nulls, or uses another encoding.
    """
    data = os.pread(fd, chunk.length, chunk.start)
    codec = open_codec(chunk)
    out = np.empty(chunk.values, chunk.dtype)
    filled = 0
    for page in page_table(data, chunk):
        encoding, values = page_values(data, page, chunk, codec)
        _decode_into(out[filled : filled + page.count], values, encoding)
        filled += page.count
    return out


def _decompress(codec, body, size: int):
    return body if codec is None else codec.decompress(body, decompressed_size=size)


def _data_page_v1(page: dict, body, size: int, codec, chunk: ColumnChunk) -> tuple[int, int, memoryview]:
    raw = memoryview(_decompress(codec, body, size))
    offset = 0
    # v1 pages carry the level streams inside the compressed block, each length-prefixed.
    for present in (chunk.max_repetition > 0, chunk.max_definition > 0):
        if present:
            offset += 4 + int.from_bytes(raw[offset : offset + 4], "little")
    return page[1], page[2], raw[offset:]


def _data_page_v2(page: dict, body, size: int, codec) -> tuple[int, int, memoryview]:
    if page.get(2, 0):
        raise Unsupported("page holds nulls")
    levels = page.get(5, 0) + page.get(6, 0)
    values = body[levels:]
    compressed = page.get(7, True)
    return page[1], page[4], memoryview(_decompress(codec if compressed else None, values, size - levels))


def _decode_into(out: np.ndarray, values, encoding: int) -> None:
    count, itemsize = len(out), out.dtype.itemsize
    if len(values) != count * itemsize:
        # Nulls (or empty lists) leave fewer values than level entries.
        raise Unsupported(f"page has {len(values)} value bytes for {count} values")
    raw = np.frombuffer(values, np.uint8)
    if encoding == ENCODING_PLAIN:
        out.view(np.uint8)[:] = raw
    elif encoding == ENCODING_BYTE_STREAM_SPLIT:
        unsplit_streams(raw, out)
    else:
        raise Unsupported(f"encoding {encoding}")


class _ThriftReader:
    """Just enough of the Thrift compact protocol to read a parquet PageHeader."""

    def __init__(self, buffer: memoryview, pos: int) -> None:
        self.buffer = buffer
        self.pos = pos

    def page_header(self) -> tuple[dict, int]:
        return self.struct(), self.pos

    def _byte(self) -> int:
        value = self.buffer[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            byte = self._byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        value = self.varint()
        return (value >> 1) ^ -(value & 1)

    def struct(self) -> dict:
        fields: dict[int, object] = {}
        last = 0
        while True:
            byte = self._byte()
            if byte == 0:
                return fields
            delta, kind = byte >> 4, byte & 0x0F
            last = last + delta if delta else self.zigzag()
            fields[last] = self.value(kind)

    def value(self, kind: int):  # noqa: C901 - one branch per Thrift type
        if kind in (1, 2):  # booleans live in the type nibble
            return kind == 1
        if kind == 3:
            return self._byte()
        if kind in (4, 5, 6):
            return self.zigzag()
        if kind == 7:
            self.pos += 8
            return None
        if kind == 8:
            size = self.varint()
            self.pos += size
            return None
        if kind in (9, 10):
            header = self._byte()
            size, element = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            return [self.value(element) for _ in range(size)]
        if kind == 11:
            size = self.varint()
            if size:
                types = self._byte()
                for _ in range(size):
                    self.value(types >> 4)
                    self.value(types & 0x0F)
            return None
        if kind == 12:
            return self.struct()
        raise Unsupported(f"thrift type {kind}")
