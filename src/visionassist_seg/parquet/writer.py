"""The shard writer: parquet files of fixed-shape array columns, one data page per row.

Why not ``pyarrow.parquet.ParquetWriter``: every array column is a fixed-shape nested
list (HF ``Array2D``/``Array3D``), and pyarrow derives repetition and definition levels
value by value, which takes longer than all of the preprocessing (README, Performance).
With fixed shapes and no nulls the levels of every row are the same bytes, so this
writer encodes them once per column (`parquet.columns`) and writes each row as one
data page (levels + values, zstd-compressed).

The file is standard parquet (format 2.6 features, data page v1). Its columns and
key-value metadata are passed in: vaseg's (`data.shards`) carry the ``ARROW:schema``
and ``huggingface`` entries pyarrow writes for the dataset's features, so pyarrow and
``datasets`` read back exactly the Array2D/Array3D extension types. Tests compare
every file with pyarrow's reading.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from visionassist_seg import __version__
from visionassist_seg.parquet import thrift
from visionassist_seg.parquet.columns import DICTIONARY, IDENTITY_DICTIONARY, STRING, ArrayColumn, ValueColumn, rle_levels
from visionassist_seg.parquet.thrift import DATA_PAGE, DICTIONARY_PAGE, RLE, SCHEMA_ELEMENT

MAGIC = b"PAR1"

# Bytes hashed and written at a time (see ShardWriter._write).
_WRITE_BLOCK = 256 * 1024


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
    """Write rows to a parquet file in row groups.

    ``columns`` are the file's columns in order: `ArrayColumn`s (shape, dtype, encoding)
    and `ValueColumn`s; a row is a dict of their values by name, and errors name a row
    by its first string column. ``key_value_metadata`` is written into the footer
    verbatim; ``compression_levels`` gives each column's zstd level.

    `add_row` encodes and compresses a row's pages at once, while its arrays are still
    in the CPU cache, and keeps only the compressed pages (about a fifth of the row) in
    one reused buffer per column; `end_row_group` writes those column chunks out.
    `write_rows` does both.
    """

    def __init__(
        self, path: Path, columns: Sequence[ArrayColumn | ValueColumn], key_value_metadata: dict[bytes, bytes], compression_levels: dict[str, int]
    ) -> None:
        import pyarrow as pa

        self._codecs = {name: pa.Codec("zstd", compression_level=level) for name, level in compression_levels.items()}
        self._columns = list(columns)
        self._arrays = [column for column in self._columns if isinstance(column, ArrayColumn)]
        self._row_name = next((c.name for c in self._columns if isinstance(c, ValueColumn) and c.dtype == STRING), None)
        self._pages = {column.name: column.page_buffer() for column in self._arrays}
        self._values_at = {column.name: len(column.levels()) for column in self._arrays}  # values follow the levels
        self._metadata = key_value_metadata
        self._row_groups: list[bytes] = []
        self._rows = 0
        self._chunks = {column.name: _ChunkBuffer() for column in self._arrays}
        self._pending: dict[str, list] = {c.name: [] for c in self._columns if isinstance(c, ValueColumn)}
        self._pending_rows = 0
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
        """Write ``rows`` (dicts of column name -> numpy array or value) as one row group."""
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
                raise ValueError(f"column {column.name}: row {self._describe(row)} has shape {row[column.name].shape}, expected {column.shape}")
        for column in self._arrays:
            page, chunk = self._pages[column.name], self._chunks[column.name]
            column.encode_values(row[column.name], page[self._values_at[column.name] :])
            if column.encoding == DICTIONARY and not chunk.size:
                # Each column chunk (row group) starts with its own dictionary page.
                self._add_page(chunk, IDENTITY_DICTIONARY.view(np.uint8), len(IDENTITY_DICTIONARY), thrift.PLAIN, column.name, DICTIONARY_PAGE)
            self._add_page(chunk, page, column.size, column.page_encoding, column.name)
        for name, values in self._pending.items():
            values.append(row[name])
        self._pending_rows += 1

    def _describe(self, row: dict) -> str:
        """Return how errors name ``row``: its first string column, else its number in the file."""
        return str(row[self._row_name]) if self._row_name else str(self._rows + self._pending_rows)

    def end_row_group(self) -> None:
        """Write the rows added since the last row group as one row group (none: nothing is written)."""
        count = self._pending_rows
        if not count:
            return
        chunks = [
            self._write_array_chunk(column, count) if isinstance(column, ArrayColumn) else self._write_value_chunk(column, count)
            for column in self._columns
        ]
        self._pending = {name: [] for name in self._pending}
        self._pending_rows = 0
        total = sum(c.uncompressed for c in chunks)
        columns = [thrift.COLUMN_CHUNK.encode(file_offset=c.start, meta_data=_column_meta(c)) for c in chunks]
        self._row_groups.append(
            thrift.ROW_GROUP.encode(
                columns=columns, total_byte_size=total, num_rows=count, file_offset=chunks[0].start,
                total_compressed_size=sum(c.compressed for c in chunks), ordinal=len(self._row_groups),
            )  # fmt: skip
        )
        self._rows += count

    def _add_page(self, chunk: _ChunkBuffer, payload, num_values: int, encoding: int, codec_name: str, page_type: int = DATA_PAGE) -> None:  # payload: buffer
        # A pyarrow Buffer rather than bytes: freed right after the copy into the chunk,
        # so the pool hands the same memory back for the next page.
        compressed = self._codecs[codec_name].compress(payload)
        sizes = {"type": page_type, "uncompressed_page_size": len(payload), "compressed_page_size": compressed.size}
        if page_type == DICTIONARY_PAGE:
            kind = thrift.DICTIONARY_PAGE_HEADER.encode(num_values=num_values, encoding=encoding)
            header = thrift.PAGE_HEADER.encode(**sizes, dictionary_page_header=kind)
        else:
            kind = thrift.DATA_PAGE_HEADER.encode(
                num_values=num_values, encoding=encoding, definition_level_encoding=RLE, repetition_level_encoding=RLE
            )
            header = thrift.PAGE_HEADER.encode(**sizes, data_page_header=kind)
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
        encodings = sorted({thrift.PLAIN if dictionary_size else column.page_encoding, RLE, column.page_encoding})
        meta = _ChunkMeta(column.path(), column.physical, encodings, column.size * count, uncompressed, compressed, offset)
        if dictionary_size:
            meta.dictionary_offset, meta.offset = offset, offset + dictionary_size
        return meta

    def _write_value_chunk(self, column: ValueColumn, count: int) -> _ChunkMeta:
        definition = rle_levels([(1, count)], 1)
        payload = struct.pack("<i", len(definition)) + definition + column.plain(self._pending[column.name])
        chunk = _ChunkBuffer()
        self._add_page(chunk, payload, count, thrift.PLAIN, column.name)
        offset, uncompressed, compressed = self._write_chunk(chunk)
        return _ChunkMeta([column.name], column.physical, [thrift.PLAIN, RLE], count, uncompressed, compressed, offset)

    def close(self) -> None:
        """Write the footer and close the file."""
        if self._file.closed:
            return
        footer = thrift.FILE_META_DATA.encode(
            version=2,
            schema=self._schema(),
            num_rows=self._rows,
            row_groups=self._row_groups,
            key_value_metadata=[thrift.KEY_VALUE.encode(key=k, value=v) for k, v in self._metadata.items()],
            created_by=f"visionassist-seg version {__version__} (shard writer)",
        )
        self._write(footer)
        self._write(struct.pack("<i", len(footer)))
        self._write(MAGIC)
        self._file.close()

    def _schema(self) -> list[bytes]:
        elements = [SCHEMA_ELEMENT.encode(name="schema", num_children=len(self._columns))]
        for column in self._columns:
            elements += column.schema_elements() if isinstance(column, ArrayColumn) else [column.schema_element()]
        return elements


def _column_meta(chunk: _ChunkMeta) -> bytes:
    return thrift.COLUMN_META_DATA.encode(
        type=chunk.physical,
        encodings=chunk.encodings,
        path_in_schema=chunk.path,
        codec=thrift.ZSTD,
        num_values=chunk.num_values,
        total_uncompressed_size=chunk.uncompressed,
        total_compressed_size=chunk.compressed,
        data_page_offset=chunk.offset,
        dictionary_page_offset=chunk.dictionary_offset,
    )

