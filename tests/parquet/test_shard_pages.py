"""Shards from vaseg's own writer, in today's layout and the older one, decode page by page exactly as pyarrow reads them."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from train_fixtures import make_rows

from visionassist_seg.parquet.columns import BYTE_STREAM_SPLIT, DICTIONARY
from visionassist_seg.parquet.writer import ShardWriter
from visionassist_seg.data.schema import ARRAY_COLUMNS, ARRAY_DTYPES
from visionassist_seg.data.shards import compression_levels, hf_key_value_metadata, shard_columns
from visionassist_seg.train.rows import ParquetReader
from visionassist_seg.train.split_index import index_split
from visionassist_seg.parquet.reader import (
    Unsupported,
    dictionary_decode,
    locate_chunk,
    open_codec,
    page_table,
    read_chunk,
    read_dictionary,
    rle_hybrid,
)


@pytest.fixture(scope="module")
def rows():
    return make_rows(5, seed=3)


def _write_shard(path, rows, uint8_encoding: str) -> None:
    """Write ``rows`` in row groups of 2, 2, 1 with the uint8 columns in ``uint8_encoding`` (BYTE_STREAM_SPLIT: shards before the change)."""
    columns = [
        dataclasses.replace(column, encoding=uint8_encoding) if column.dtype == np.uint8 else column
        for column in shard_columns()
    ]
    with ShardWriter(path, columns, hf_key_value_metadata(), compression_levels(2)) as writer:
        for start in range(0, len(rows), 2):
            writer.write_rows(rows[start : start + 2])


@pytest.mark.parametrize("uint8_encoding", [DICTIONARY, BYTE_STREAM_SPLIT])
def test_vaseg_shards_decode_row_by_row_like_pyarrow(tmp_path, rows, uint8_encoding):
    path = tmp_path / "train-00000-of-00001.parquet"
    _write_shard(path, rows, uint8_encoding)
    expected_encoding = "RLE_DICTIONARY" if uint8_encoding == DICTIONARY else "BYTE_STREAM_SPLIT"
    metadata = pq.ParquetFile(path).metadata
    assert expected_encoding in metadata.row_group(0).column(0).encodings
    pages, arrow = ParquetReader(), ParquetReader()
    slices = index_split("train", [path]).slices
    assert [piece.rows for piece in slices] == [2, 2, 1]
    for piece in slices:
        expected = arrow.read_with_pyarrow(piece)
        row_pages = pages.row_pages(piece)
        assert row_pages is not None, "the page path must take vaseg's own shards"
        for k in range(piece.rows):
            sample = row_pages.row(k)
            for name in ARRAY_COLUMNS:
                got = getattr(sample, name)
                assert got.dtype == ARRAY_DTYPES[name], name
                np.testing.assert_array_equal(got, expected[name][k], err_msg=f"{name} row {k}")
        whole = pages.read(piece)
        assert pages._direct[str(path)] is True
        for name in expected:
            np.testing.assert_array_equal(whole[name], expected[name], err_msg=name)
    pages.close()


def test_uint8_rows_come_back_as_views_of_the_page(tmp_path, rows):
    # "The page is the image": no per-row copy or cast for the identity-dictionary layout.
    path = tmp_path / "train-00000-of-00001.parquet"
    _write_shard(path, rows, DICTIONARY)
    reader = ParquetReader()
    sample = reader.row_pages(index_split("train", [path]).slices[0]).row(0)
    # A copy or a cast would end in an array owning its memory; a view ends in the page's buffer.
    for array in (sample.image, sample.label):
        assert array.dtype == np.uint8
        assert not isinstance(_memory_owner(array), np.ndarray)
    reader.close()


def _memory_owner(array: np.ndarray) -> object:
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array


def test_rle_hybrid_hand_values():
    # Bit-packed 0..7 at width 3 (the parquet spec's example bytes), then an RLE run of five 4s.
    data = bytes([0x03, 0x88, 0xC6, 0xFA, 0x0A, 0x04])
    assert rle_hybrid(data, 3, 13).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 4, 4, 4, 4, 4]
    assert rle_hybrid(data, 3, 5).tolist() == [0, 1, 2, 3, 4]  # padding past the count is dropped


def test_rle_hybrid_width_8_single_run_is_a_view():
    values = np.arange(16, dtype=np.uint8)
    data = bytes([0x05]) + values.tobytes()  # 2 groups of 8, bit-packed
    decoded = rle_hybrid(data, 8, 16)
    assert decoded.tolist() == values.tolist() and decoded.dtype == np.uint8 and not decoded.flags.owndata


def _bit_pack(values: list[int], width: int) -> bytes:
    """Reference bit-packing: value i at bits [i * width, (i + 1) * width) of one little-endian integer."""
    total = sum(v << (i * width) for i, v in enumerate(values))
    return total.to_bytes(len(values) * width // 8, "little")


@pytest.mark.parametrize("width", [1, 2, 5, 8, 11, 16, 20, 32])
def test_rle_hybrid_matches_reference_packing(width):
    rng = np.random.default_rng(width)
    packed = [int(v) for v in rng.integers(0, 2**width, size=24, dtype=np.uint64)]
    repeat = int(rng.integers(0, 2**width, dtype=np.uint64))
    data = bytes([(3 << 1) | 1]) + _bit_pack(packed, width) + bytes([7 << 1]) + repeat.to_bytes((width + 7) // 8, "little")
    assert rle_hybrid(data, width, 31).tolist() == packed + [repeat] * 7


def test_rle_hybrid_rejects_short_runs():
    with pytest.raises(Unsupported):
        rle_hybrid(bytes([0x03, 0x88, 0xC6]), 3, 8)  # bit-packed run cut short
    with pytest.raises(Unsupported):
        rle_hybrid(bytes([0x0A, 0x04]), 3, 6)  # five values for six


def test_dictionary_decode_rejects_index_past_the_dictionary(tmp_path):
    import pyarrow as pa

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": pa.array([5, 6, 5, 7], pa.int32())}), path, use_dictionary=True)
    parquet = pq.ParquetFile(path)
    chunk = locate_chunk(parquet.metadata, parquet.schema, 0, "a")
    np.testing.assert_array_equal(_read_chunk(path, chunk), [5, 6, 5, 7])
    data = path.read_bytes()[chunk.start : chunk.start + chunk.length]
    dictionary = read_dictionary(data, page_table(data, chunk)[0], chunk, open_codec(chunk))
    assert dictionary.values.tolist() == [5, 6, 7] and not dictionary.identity
    with pytest.raises(Unsupported, match="past a dictionary of 3"):
        dictionary_decode(bytes([2, 0x02, 3]), dictionary, 1)  # width 2, RLE run of one 3
    with pytest.raises(Unsupported, match="without a dictionary page"):
        dictionary_decode(bytes([2, 0x02, 0]), None, 1)


def test_dictionary_pages_with_nulls_are_not_decoded(tmp_path):
    import pyarrow as pa

    path = tmp_path / "nulls.parquet"
    table = pa.table({"a": pa.array([[1, None, 3], [4, 5, 6], []], pa.list_(pa.int32()))})
    pq.write_table(table, path, use_dictionary=True)
    parquet = pq.ParquetFile(path)
    with pytest.raises(Unsupported, match="nulls or empty lists"):
        _read_chunk(path, locate_chunk(parquet.metadata, parquet.schema, 0, "a"))


def _read_chunk(path, chunk) -> np.ndarray:
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_chunk(fd, chunk)
    finally:
        os.close(fd)


def test_truncated_run_header_is_unsupported_not_an_index_error():
    with pytest.raises(Unsupported):
        rle_hybrid(bytes([0x83]), 8, 8)  # a varint whose continuation byte is missing
