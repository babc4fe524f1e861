"""The page reader: plain, non-null parquet column chunks decoded straight into flat numpy arrays.

pyarrow rebuilds every nested list level of an Array2D/Array3D column (offsets,
validity) only for the loader to flatten them again, which costs more than the
decompression itself (README, Performance). The leaf values of a column without nulls
are just the data pages' value sections laid end to end, so this module reads the
column chunk's bytes, parses each page header (`thrift.PAGE_HEADER`), decompresses the
page, skips the level streams and decodes PLAIN, BYTE_STREAM_SPLIT or dictionary
(PLAIN dictionary page, RLE/bit-packed hybrid indices) values. vaseg's writer stores
uint8 columns with the identity dictionary 0..255 and 8-bit indices, so their index
bytes are the values themselves: `dictionary_decode` then returns a view of the page.

Anything else (nulls, other encodings or codecs) raises `Unsupported`, and the caller
falls back to pyarrow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from visionassist_seg.parquet.byte_streams import unsplit_streams
from visionassist_seg.parquet.thrift import (
    BYTE_STREAM_SPLIT,
    DATA_PAGE,
    DATA_PAGE_V2,
    DICTIONARY_PAGE,
    INDEX_PAGE,
    PAGE_HEADER,
    PLAIN,
    PLAIN_DICTIONARY,
    RLE_DICTIONARY,
    CompactReader,
    ThriftError,
)

# Data page encodings whose values are indices into the chunk's dictionary page.
DICTIONARY_ENCODINGS = (PLAIN_DICTIONARY, RLE_DICTIONARY)
# Every data page encoding this module decodes.
DECODED_ENCODINGS = (PLAIN, BYTE_STREAM_SPLIT, *DICTIONARY_ENCODINGS)
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
        Unsupported: the column has several leaves, or an unknown type or codec.
    """
    leaves = [i for i in range(len(schema)) if schema.column(i).path.split(".")[0] == column]
    if len(leaves) != 1:
        raise Unsupported(f"column {column} has {len(leaves)} leaf columns")
    index = leaves[0]
    chunk = metadata.row_group(row_group).column(index)
    if chunk.physical_type not in PHYSICAL_DTYPES or chunk.compression not in CODECS:
        raise Unsupported(f"column {column}: {chunk.physical_type}, {chunk.compression}")
    leaf = schema.column(index)
    # A dictionary page, when there is one, comes before the data pages.
    start = min(chunk.dictionary_page_offset, chunk.data_page_offset) if chunk.has_dictionary_page else chunk.data_page_offset
    return ColumnChunk(
        start=start,
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

    header: dict  # the parsed PageHeader, by field name (`thrift.PAGE_HEADER`)
    body: slice  # of the chunk's bytes
    count: int  # values (level entries) in the page

    @property
    def encoding(self) -> int:
        """Return the parquet encoding of the page's values."""
        if self.header["type"] == DATA_PAGE:
            return self.header["data_page_header"]["encoding"]
        return self.header["data_page_header_v2"]["encoding"]


def page_table(data, chunk: ColumnChunk) -> tuple[Page | None, list[Page]]:
    """Return the dictionary page (None if there is none) and the data pages of ``chunk``, in order.

    ``data`` (bytes-like) holds the chunk's bytes.

    Raises:
        Unsupported: a page is of an unknown type, a dictionary page is not the first page,
            or the counts disagree.
    """
    view = memoryview(data)
    dictionary: Page | None = None
    pages: list[Page] = []
    pos = total = 0
    while pos < len(view):
        header, pos = _page_header(view, pos)
        page_type, compressed_size = header.get("type"), header.get("compressed_page_size")
        body = slice(pos, pos + compressed_size)
        pos += compressed_size
        if page_type == INDEX_PAGE:
            continue
        if page_type == DICTIONARY_PAGE:
            if dictionary is not None or pages:
                raise Unsupported("dictionary page after the first page")
            dictionary = Page(header, body, header["dictionary_page_header"]["num_values"])
            continue
        if page_type == DATA_PAGE:
            count = header["data_page_header"]["num_values"]
        elif page_type == DATA_PAGE_V2:
            count = header["data_page_header_v2"]["num_values"]
        else:
            raise Unsupported(f"page type {page_type}")
        pages.append(Page(header, body, count))
        total += count
    if total != chunk.values:
        raise Unsupported(f"pages hold {total} of {chunk.values} values")
    return dictionary, pages


def _page_header(view: memoryview, pos: int) -> tuple[dict, int]:
    """Return the PageHeader at ``pos`` (by field name) and where the page's body starts."""
    reader = CompactReader(view, pos)
    try:
        return reader.struct(PAGE_HEADER), reader.pos
    except ThriftError as err:  # truncated or garbled: let pyarrow read the chunk and report what is wrong
        raise Unsupported(str(err)) from err


def page_values(data, page: Page, chunk: ColumnChunk, codec) -> tuple[int, memoryview]:
    """Return (encoding, value bytes) of one page: decompressed, level streams skipped.

    ``codec`` is ``pyarrow.Codec(chunk.codec)`` (None when uncompressed).

    Raises:
        Unsupported: the page holds nulls (found here in v2 pages and dictionary-encoded v1
            pages; in PLAIN v1 pages the value bytes fall short of the page's count).
    """
    header, body = page.header, memoryview(data)[page.body]
    size = header["uncompressed_page_size"]
    if header["type"] == DATA_PAGE:
        return _data_page_v1(header["data_page_header"], body, size, codec, chunk)
    return _data_page_v2(header["data_page_header_v2"], body, size, codec)


def open_codec(chunk: ColumnChunk):  # -> pyarrow.Codec | None
    """Return the pyarrow codec that decompresses ``chunk``'s pages (None when uncompressed)."""
    import pyarrow as pa

    return pa.Codec(chunk.codec) if chunk.codec else None


@dataclass(frozen=True)
class Dictionary:
    """The values of a column chunk's dictionary page."""

    values: np.ndarray  # of the chunk's physical dtype
    identity: bool  # values[i] == i for every i: an index is its own value


def read_dictionary(data, page: Page | None, chunk: ColumnChunk, codec) -> Dictionary | None:
    """Return the decoded dictionary ``page`` of ``chunk`` (bytes ``data``), or None when there is none.

    Raises:
        Unsupported: the dictionary is not PLAIN-encoded or its size disagrees with its header.
    """
    if page is None:
        return None
    encoding = page.header["dictionary_page_header"].get("encoding", PLAIN)
    if encoding not in (PLAIN, PLAIN_DICTIONARY):
        raise Unsupported(f"dictionary page encoding {encoding}")
    raw = _decompress(codec, memoryview(data)[page.body], page.header["uncompressed_page_size"])
    if len(raw) != page.count * chunk.dtype.itemsize:
        raise Unsupported(f"dictionary page has {len(raw)} bytes for {page.count} values")
    values = np.frombuffer(raw, chunk.dtype).copy()
    return Dictionary(values, bool(np.array_equal(values, np.arange(values.size))))


def dictionary_decode(values, dictionary: Dictionary | None, count: int) -> np.ndarray:
    """Return the ``count`` values of a dictionary-encoded page's value bytes ``values``.

    With an identity dictionary the result is the indices themselves (uint8 for bit
    widths up to 8: a view of ``values`` when they are one bit-packed run); otherwise
    the dictionary's values at those indices. Callers cast to the dtype they need.

    Raises:
        Unsupported: no dictionary, an index past its end, or malformed runs.
    """
    if dictionary is None:
        raise Unsupported("dictionary-encoded page without a dictionary page")
    raw = memoryview(values)
    if not len(raw):
        raise Unsupported("dictionary-encoded page without values")
    indices = rle_hybrid(raw[1:], raw[0], count)
    size = dictionary.values.size
    # uint8 indices cannot pass the end of a dictionary of 256 or more values: skip the scan.
    if not (indices.dtype == np.uint8 and size >= 256) and count and int(indices.max()) >= size:
        raise Unsupported(f"dictionary index {int(indices.max())} past a dictionary of {size} values")
    return indices if dictionary.identity else dictionary.values[indices]


def rle_hybrid(data, bit_width: int, count: int) -> np.ndarray:
    """Return the first ``count`` values of parquet's RLE/bit-packing hybrid runs ``data`` (no length prefix).

    The dtype is the narrowest unsigned type holding ``bit_width`` bits. A single
    bit-packed run of whole bytes (widths 8, 16, 32) is returned as a view of ``data``.

    Raises:
        Unsupported: a width over 32, or runs that end before ``count`` values.
    """
    dtype = np.dtype(np.uint8 if bit_width <= 8 else np.uint16 if bit_width <= 16 else np.uint32)
    pieces = []
    for values, value, packed in _hybrid_runs(data, bit_width, count):
        pieces.append(np.full(values, value, dtype) if packed is None else _unpack_bits(packed, bit_width, values, dtype))
    joined = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return joined[:count]


def _all_levels_equal(data, bit_width: int, count: int, level: int) -> bool:
    """Return whether the first ``count`` levels of hybrid runs ``data`` all equal ``level`` (RLE runs not expanded)."""
    have = 0
    for values, value, packed in _hybrid_runs(data, bit_width, count):
        used = min(values, count - have)
        if packed is None and value != level:
            return False
        if packed is not None and not np.all(_unpack_bits(packed, bit_width, values, np.dtype(np.uint32))[:used] == level):
            return False
        have += used
    return True


def _hybrid_runs(data, bit_width: int, count: int):  # -> Iterator[tuple[int, int | None, np.ndarray | None]]
    """Yield the runs covering the first ``count`` values: (values, RLE value or None, bit-packed bytes or None)."""
    if bit_width > 32:
        raise Unsupported(f"bit width {bit_width}")
    reader = CompactReader(memoryview(data), 0)
    have = 0
    while have < count:
        if reader.pos >= len(reader.buffer):
            raise Unsupported(f"runs end after {have} of {count} values")
        try:
            header = reader.varint()
        except ThriftError as err:
            raise Unsupported(str(err)) from err
        if header & 1:  # bit-packed: (header >> 1) groups of 8 values, bit_width bytes a group
            values = (header >> 1) * 8
            size = values * bit_width // 8
            if reader.pos + size > len(reader.buffer):
                raise Unsupported("bit-packed run past the end of the page")
            yield values, None, np.frombuffer(reader.buffer, np.uint8, count=size, offset=reader.pos)
            reader.pos += size
        else:  # RLE: (header >> 1) repeats of one value stored in ceil(bit_width / 8) bytes
            values, width = header >> 1, (bit_width + 7) // 8
            yield values, int.from_bytes(reader.buffer[reader.pos : reader.pos + width], "little"), None
            reader.pos += width
        have += values


def _unpack_bits(packed: np.ndarray, bit_width: int, count: int, dtype: np.dtype) -> np.ndarray:
    """Return ``count`` little-endian ``bit_width``-bit values packed end to end in ``packed``."""
    if bit_width == 0:
        return np.zeros(count, dtype)
    if bit_width in (8, 16, 32) and bit_width == 8 * dtype.itemsize:
        return packed.view(dtype.newbyteorder("<"))
    bits = np.unpackbits(packed, bitorder="little").reshape(count, bit_width).astype(dtype)
    return (bits << np.arange(bit_width, dtype=dtype)).sum(axis=1, dtype=dtype)


def read_chunk(fd: int, chunk: ColumnChunk) -> np.ndarray:
    """Return the leaf values of ``chunk`` (read from the open file descriptor ``fd``) as a flat array.

    Raises:
        Unsupported: a page holds nulls or uses another encoding.
    """
    data = os.pread(fd, chunk.length, chunk.start)
    codec = open_codec(chunk)
    out = np.empty(chunk.values, chunk.dtype)
    filled = 0
    dictionary_page, pages = page_table(data, chunk)
    dictionary = read_dictionary(data, dictionary_page, chunk, codec)
    for page in pages:
        encoding, values = page_values(data, page, chunk, codec)
        _decode_into(out[filled : filled + page.count], values, encoding, dictionary)
        filled += page.count
    return out


def _decompress(codec, body, size: int):
    return body if codec is None else codec.decompress(body, decompressed_size=size)


def _data_page_v1(page: dict, body, size: int, codec, chunk: ColumnChunk) -> tuple[int, memoryview]:
    raw = memoryview(_decompress(codec, body, size))
    offset = 0
    definition = raw[:0]
    # v1 pages carry the level streams inside the compressed block, each length-prefixed.
    for present, is_definition in ((chunk.max_repetition > 0, False), (chunk.max_definition > 0, True)):
        if present:
            length = int.from_bytes(raw[offset : offset + 4], "little")
            if is_definition:
                definition = raw[offset + 4 : offset + 4 + length]
            offset += 4 + length
    encoding, count = page["encoding"], page["num_values"]
    if encoding in DICTIONARY_ENCODINGS and chunk.max_definition > 0:
        # Index runs are padded to groups of 8, so unlike PLAIN values their length cannot
        # reveal nulls or empty lists: every definition level must be the maximum instead.
        if not _all_levels_equal(definition, chunk.max_definition.bit_length(), count, chunk.max_definition):
            raise Unsupported("page holds nulls or empty lists")
    return encoding, raw[offset:]


def _data_page_v2(page: dict, body, size: int, codec) -> tuple[int, memoryview]:
    if page.get("num_nulls", 0):
        raise Unsupported("page holds nulls")
    levels = page.get("definition_levels_byte_length", 0) + page.get("repetition_levels_byte_length", 0)
    values = body[levels:]
    compressed = page.get("is_compressed", True)
    return page["encoding"], memoryview(_decompress(codec if compressed else None, values, size - levels))


def _decode_into(out: np.ndarray, values, encoding: int, dictionary: Dictionary | None) -> None:
    count, itemsize = len(out), out.dtype.itemsize
    if encoding in DICTIONARY_ENCODINGS:
        out[:] = dictionary_decode(values, dictionary, count)
        return
    if len(values) != count * itemsize:
        # Nulls (or empty lists) leave fewer values than level entries.
        raise Unsupported(f"page has {len(values)} value bytes for {count} values")
    raw = np.frombuffer(values, np.uint8)
    if encoding == PLAIN:
        out.view(np.uint8)[:] = raw
    elif encoding == BYTE_STREAM_SPLIT:
        unsplit_streams(raw, out)
    else:
        raise Unsupported(f"encoding {encoding}")

