"""The compact-protocol codec: hand-encoded bytes, named fields, and what it rejects."""

from __future__ import annotations

import pytest

from visionassist_seg.parquet import thrift
from visionassist_seg.parquet.reader import Unsupported, page_table
from visionassist_seg.parquet.thrift import CompactReader, ThriftError, encode_struct


def test_thrift_struct_compact_encoding():
    # field 1 i32 = 5 (zigzag 10), field 3 binary "ab", field 20 (long delta) bool true, stop
    assert encode_struct([(1, "i32", 5), (3, "binary", "ab"), (20, "bool", True)]) == bytes(
        [0x15, 10, 0x28, 2, ord("a"), ord("b"), 0x01, 40, 0x00]
    )


def test_thrift_reader_reads_a_compact_struct():
    # field 1 i32 = 3 (zigzag 6), field 2 i32 = -1 (zigzag 1), field 5 struct {field 1 i32 = 64 (zigzag 128 -> varint 0x80 0x01)}
    data = memoryview(bytes([0x15, 0x06, 0x15, 0x01, 0x3C, 0x15, 0x80, 0x01, 0x00, 0x00]))
    reader = CompactReader(data, 0)
    fields = reader.struct()
    assert fields == {1: 3, 2: -1, 5: {1: 64}} and reader.pos == len(data)


def test_thrift_reader_names_page_header_fields():
    data = memoryview(bytes([0x15, 0x06, 0x15, 0x01, 0x3C, 0x15, 0x80, 0x01, 0x00, 0x00]))
    header = CompactReader(data, 0).struct(thrift.PAGE_HEADER)
    assert header == {"type": 3, "uncompressed_page_size": -1, "data_page_header": {"num_values": 64}}


def test_thrift_reader_rejects_unknown_types():
    with pytest.raises(ThriftError):
        CompactReader(memoryview(bytes([0x1D, 0x00])), 0).struct()


def test_named_encoding_round_trips_a_page_header():
    data_page = thrift.DATA_PAGE_HEADER.encode(num_values=7, encoding=thrift.RLE_DICTIONARY, definition_level_encoding=thrift.RLE)
    encoded = thrift.PAGE_HEADER.encode(type=thrift.DATA_PAGE, uncompressed_page_size=300, compressed_page_size=-2, data_page_header=data_page)
    assert encoded == encode_struct(
        [(1, "i32", 0), (2, "i32", 300), (3, "i32", -2), (5, "struct", encode_struct([(1, "i32", 7), (2, "i32", 8), (3, "i32", 3)]))]
    )
    assert CompactReader(memoryview(encoded)).struct(thrift.PAGE_HEADER) == {
        "type": 0, "uncompressed_page_size": 300, "compressed_page_size": -2,
        "data_page_header": {"num_values": 7, "encoding": 8, "definition_level_encoding": 3},
    }  # fmt: skip


def test_struct_encode_rejects_unknown_field_names():
    with pytest.raises(TypeError, match="PageHeader has no field"):
        thrift.PAGE_HEADER.encode(num_pages=1)


def test_reader_reads_lists_binaries_and_long_field_ids():
    encoded = thrift.COLUMN_META_DATA.encode(encodings=[0, 3, 8], path_in_schema=["a", "list", "element"], dictionary_page_offset=2**40)
    assert CompactReader(memoryview(encoded)).struct(thrift.COLUMN_META_DATA) == {
        "encodings": [0, 3, 8], "path_in_schema": [b"a", b"list", b"element"], "dictionary_page_offset": 2**40,
    }  # fmt: skip


def test_truncated_page_header_is_unsupported_not_a_crash():
    header = thrift.PAGE_HEADER.encode(type=thrift.DATA_PAGE, uncompressed_page_size=10, compressed_page_size=10)
    with pytest.raises(Unsupported, match="data ends"):
        page_table(header[:-2], chunk=None)
