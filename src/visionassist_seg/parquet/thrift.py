"""Parquet's footer and page headers in the Thrift compact protocol: one codec, fields by name.

The structures below are the parts of parquet-format's ``parquet.thrift`` that vaseg
writes or reads, each field's number written once next to its name. `Struct.encode`
takes the fields by name and writes them in id order; `CompactReader` reads any struct,
by field id or, given a `Struct`, by name (fields vaseg does not know are skipped).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

# parquet.thrift enum values vaseg uses. Type:
BOOLEAN, INT32, FLOAT, BYTE_ARRAY = 0, 1, 4, 6
# FieldRepetitionType:
OPTIONAL, REPEATED = 1, 2
# ConvertedType:
CONVERTED_UTF8, CONVERTED_LIST, CONVERTED_UINT_8 = 0, 3, 11
# Encoding:
PLAIN, PLAIN_DICTIONARY, RLE, RLE_DICTIONARY, BYTE_STREAM_SPLIT = 0, 2, 3, 8, 9
# CompressionCodec:
ZSTD = 6
# PageType:
DATA_PAGE, INDEX_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2 = 0, 1, 2, 3

# Compact protocol type ids (the low nibble of a field header).
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)
_TYPE_IDS = {
    "i32": _I32, "i64": _I64, "byte": _BYTE, "binary": _BINARY, "struct": _STRUCT,
    "list_i32": _LIST, "list_binary": _LIST, "list_struct": _LIST,
}  # fmt: skip
_LIST_ELEMENTS = {"list_i32": ("i32", _I32), "list_binary": ("binary", _BINARY), "list_struct": ("struct", _STRUCT)}


class ThriftError(Exception):
    """The bytes end inside a value, or hold a type the compact protocol does not define."""


@dataclass(frozen=True)
class Field:
    """One field of a Thrift struct: its name and id in parquet.thrift, and how it is encoded.

    ``kind``: ``i32``, ``i64``, ``byte``, ``bool``, ``binary`` (bytes or str), ``struct``
    (encoded bytes), ``list_i32``, ``list_binary`` or ``list_struct`` (of encoded bytes).
    ``struct`` names the fields of a nested struct (or of a list's elements) when decoding.
    """

    name: str
    id: int
    kind: str
    struct: Struct | None = None


class Struct:
    """A Thrift struct type: encodes fields given by name, names the fields of decoded ones."""

    def __init__(self, name: str, fields: Sequence[Field] = ()) -> None:
        self.name = name
        self.fields = sorted(fields, key=lambda field: field.id)
        self.by_id = {field.id: field for field in self.fields}
        self._names = {field.name for field in self.fields}

    def encode(self, **values: object) -> bytes:
        """Return the struct holding ``values`` (field name -> value; None or absent: not written).

        Raises:
            TypeError: a name that is not a field of this struct.
        """
        unknown = set(values) - self._names
        if unknown:
            raise TypeError(f"{self.name} has no field {sorted(unknown)}")
        return encode_struct([(f.id, f.kind, values.get(f.name)) for f in self.fields])

    def __repr__(self) -> str:
        return f"Struct({self.name})"


def encode_struct(fields: Sequence[tuple[int, str, object]]) -> bytes:
    """Return a compact-protocol struct from ``(field id, kind, value)`` in id order (None values skipped)."""
    out = bytearray()
    last = 0
    for field_id, kind, value in fields:
        if value is None:
            continue
        type_id = (_TRUE if value else _FALSE) if kind == "bool" else _TYPE_IDS[kind]
        delta = field_id - last
        if 0 < delta <= 15:
            out.append((delta << 4) | type_id)
        else:
            out.append(type_id)
            out += varint(_zigzag(field_id))
        last = field_id
        out += _encode_value(kind, value)
    out.append(0)  # STOP
    return bytes(out)


def varint(value: int) -> bytes:
    """Return ``value`` (>= 0) as an unsigned LEB128 varint."""
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


def _encode_value(kind: str, value) -> bytes:  # type: ignore[no-untyped-def]
    if kind in ("i32", "i64"):
        return varint(_zigzag(int(value)))
    if kind == "byte":
        return struct.pack("<b", value)
    if kind == "bool":
        return b""  # the value lives in the field header's type id
    if kind == "binary":
        data = value.encode() if isinstance(value, str) else bytes(value)
        return varint(len(data)) + data
    if kind == "struct":
        return bytes(value)
    element_kind, element_type = _LIST_ELEMENTS[kind]
    items = list(value)
    size = bytes([(len(items) << 4) | element_type]) if len(items) < 15 else bytes([0xF0 | element_type]) + varint(len(items))
    return size + b"".join(_encode_value(element_kind, item) for item in items)


class CompactReader:
    """Reads compact-protocol values from ``buffer`` starting at ``pos`` (advanced as it reads)."""

    def __init__(self, buffer: memoryview, pos: int = 0) -> None:
        self.buffer = buffer
        self.pos = pos

    def byte(self) -> int:
        """Return the next byte.

        Raises:
            ThriftError: the buffer ends here.
        """
        if self.pos >= len(self.buffer):
            raise ThriftError(f"data ends at byte {self.pos}")
        value = self.buffer[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        """Return the next unsigned varint."""
        shift = result = 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        """Return the next signed (zigzag) varint."""
        value = self.varint()
        return (value >> 1) ^ -(value & 1)

    def struct(self, spec: Struct | None = None) -> dict:
        """Return the next struct: field id -> value, or with ``spec`` field name -> value (unknown ids dropped)."""
        fields: dict = {}
        last = 0
        while True:
            header = self.byte()
            if header == 0:
                return fields
            delta, kind = header >> 4, header & 0x0F
            last = last + delta if delta else self.zigzag()
            field = spec.by_id.get(last) if spec is not None else None
            value = self.value(kind, field.struct if field is not None else None)
            if spec is None:
                fields[last] = value
            elif field is not None:
                fields[field.name] = value

    def value(self, kind: int, spec: Struct | None = None):  # noqa: C901 - one branch per Thrift type
        """Return the next value of compact type ``kind`` (structs, and lists of them, named by ``spec``)."""
        if kind in (_TRUE, _FALSE):  # booleans live in the type nibble
            return kind == _TRUE
        if kind == _BYTE:
            return self.byte()
        if kind in (_I16, _I32, _I64):
            return self.zigzag()
        if kind == _DOUBLE:
            return struct.unpack("<d", self._take(8))[0]
        if kind == _BINARY:
            return self._take(self.varint())
        if kind in (_LIST, _SET):
            header = self.byte()
            size, element = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            return [self.value(element, spec) for _ in range(size)]
        if kind == _MAP:
            size = self.varint()
            types = self.byte() if size else 0
            return {self.value(types >> 4): self.value(types & 0x0F) for _ in range(size)}
        if kind == _STRUCT:
            return self.struct(spec)
        raise ThriftError(f"thrift type {kind}")

    def _take(self, size: int) -> bytes:
        if self.pos + size > len(self.buffer):
            raise ThriftError(f"a {size}-byte value at byte {self.pos} runs past the end")
        data = bytes(self.buffer[self.pos : self.pos + size])
        self.pos += size
        return data


# parquet.thrift structures, as far as vaseg writes or reads them. Fields of kind
# "struct" carry the encoded bytes of the nested struct when encoding.
KEY_VALUE = Struct("KeyValue", [Field("key", 1, "binary"), Field("value", 2, "binary")])
INT_TYPE = Struct("IntType", [Field("bitWidth", 1, "byte"), Field("isSigned", 2, "bool")])
STRING_TYPE = Struct("StringType")
LIST_TYPE = Struct("ListType")
LOGICAL_TYPE = Struct(  # a union: exactly one field set
    "LogicalType", [Field("STRING", 1, "struct", STRING_TYPE), Field("LIST", 3, "struct", LIST_TYPE), Field("INTEGER", 10, "struct", INT_TYPE)]
)
SCHEMA_ELEMENT = Struct(
    "SchemaElement",
    [
        Field("type", 1, "i32"), Field("repetition_type", 3, "i32"), Field("name", 4, "binary"),
        Field("num_children", 5, "i32"), Field("converted_type", 6, "i32"), Field("logicalType", 10, "struct", LOGICAL_TYPE),
    ],
)  # fmt: skip
DATA_PAGE_HEADER = Struct(
    "DataPageHeader",
    [Field("num_values", 1, "i32"), Field("encoding", 2, "i32"), Field("definition_level_encoding", 3, "i32"), Field("repetition_level_encoding", 4, "i32")],
)
DICTIONARY_PAGE_HEADER = Struct("DictionaryPageHeader", [Field("num_values", 1, "i32"), Field("encoding", 2, "i32"), Field("is_sorted", 3, "bool")])
DATA_PAGE_HEADER_V2 = Struct(
    "DataPageHeaderV2",
    [
        Field("num_values", 1, "i32"), Field("num_nulls", 2, "i32"), Field("num_rows", 3, "i32"), Field("encoding", 4, "i32"),
        Field("definition_levels_byte_length", 5, "i32"), Field("repetition_levels_byte_length", 6, "i32"),
        Field("is_compressed", 7, "bool"),
    ],
)  # fmt: skip
PAGE_HEADER = Struct(
    "PageHeader",
    [
        Field("type", 1, "i32"), Field("uncompressed_page_size", 2, "i32"), Field("compressed_page_size", 3, "i32"),
        Field("data_page_header", 5, "struct", DATA_PAGE_HEADER),
        Field("dictionary_page_header", 7, "struct", DICTIONARY_PAGE_HEADER),
        Field("data_page_header_v2", 8, "struct", DATA_PAGE_HEADER_V2),
    ],
)  # fmt: skip
COLUMN_META_DATA = Struct(
    "ColumnMetaData",
    [
        Field("type", 1, "i32"), Field("encodings", 2, "list_i32"), Field("path_in_schema", 3, "list_binary"),
        Field("codec", 4, "i32"), Field("num_values", 5, "i64"), Field("total_uncompressed_size", 6, "i64"),
        Field("total_compressed_size", 7, "i64"), Field("data_page_offset", 9, "i64"), Field("dictionary_page_offset", 11, "i64"),
    ],
)  # fmt: skip
COLUMN_CHUNK = Struct("ColumnChunk", [Field("file_offset", 2, "i64"), Field("meta_data", 3, "struct", COLUMN_META_DATA)])
ROW_GROUP = Struct(
    "RowGroup",
    [
        Field("columns", 1, "list_struct", COLUMN_CHUNK), Field("total_byte_size", 2, "i64"), Field("num_rows", 3, "i64"),
        Field("file_offset", 5, "i64"), Field("total_compressed_size", 6, "i64"),
        # i16 in parquet.thrift; vaseg has always written it with the i32 type id (the
        # value's bytes are the same), kept so shards stay byte-identical.
        Field("ordinal", 7, "i32"),
    ],
)  # fmt: skip
FILE_META_DATA = Struct(
    "FileMetaData",
    [
        Field("version", 1, "i32"), Field("schema", 2, "list_struct", SCHEMA_ELEMENT), Field("num_rows", 3, "i64"),
        Field("row_groups", 4, "list_struct", ROW_GROUP), Field("key_value_metadata", 5, "list_struct", KEY_VALUE),
        Field("created_by", 6, "binary"),
    ],
)  # fmt: skip
