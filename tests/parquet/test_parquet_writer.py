"""The fixed-schema parquet writer reads back exactly like pyarrow's own writer."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arrow_rows import parquet_options, rows_to_table

from visionassist_seg.parquet.byte_streams import split_streams
from visionassist_seg.parquet.columns import BYTE_STREAM_SPLIT, DICTIONARY, PLAIN, ArrayColumn, ValueColumn, level_runs
from visionassist_seg.parquet.writer import ShardWriter
from visionassist_seg.data.schema import dataset_features
from visionassist_seg.data.shards import open_shard_writer, sha256_file
from visionassist_seg.data.synthetic import make_sample
from visionassist_seg.ops import preprocess_sample


def _rows(count: int, start: int = 0) -> list[dict]:
    rows = []
    for index in range(start, start + count):
        processed = preprocess_sample(*make_sample(5, "train", index))
        rows.append(
            {
                "image": processed.image,
                "label": processed.label,
                "spatial_weights": processed.spatial_weights,
                "dist_map": processed.dist_map,
                "filename": f"{index:06d}",
                "preprocessed": True,
            }
        )
    return rows


def test_shard_writer_reads_back_identical_to_pyarrow_writer(tmp_path):
    groups = [_rows(3), _rows(2, start=3)]
    ours = tmp_path / "ours.parquet"
    with open_shard_writer(ours, compression_level=3) as writer:
        for rows in groups:
            writer.write_rows(rows)
    assert writer.sha256 == sha256_file(ours)
    features = dataset_features()
    reference = tmp_path / "pyarrow.parquet"
    with pq.ParquetWriter(reference, features.arrow_schema, **parquet_options(3)) as writer:
        for rows in groups:
            writer.write_table(rows_to_table(rows, features))
    ours_table, reference_table = pq.read_table(ours), pq.read_table(reference)
    assert ours_table.schema.equals(reference_table.schema, check_metadata=True)
    assert ours_table.equals(reference_table)
    metadata = pq.ParquetFile(ours).metadata
    assert metadata.num_rows == 5 and metadata.num_row_groups == 2
    assert [metadata.row_group(i).num_rows for i in range(2)] == [3, 2]


def test_shard_writer_empty_file_is_valid(tmp_path):
    path = tmp_path / "empty.parquet"
    with open_shard_writer(path, compression_level=3):
        pass
    table = pq.read_table(path)
    assert table.num_rows == 0 and table.schema.equals(dataset_features().arrow_schema)


def test_shard_writer_rejects_wrong_shape(tmp_path):
    rows = _rows(1)
    rows[0]["label"] = rows[0]["label"][:200]
    with pytest.raises(ValueError, match="label: row 000000 has shape"), open_shard_writer(tmp_path / "x.parquet", 3) as writer:
        writer.write_rows(rows)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
    dtype=st.sampled_from([np.uint8, np.float32]),
    encoding=st.sampled_from([PLAIN, BYTE_STREAM_SPLIT, DICTIONARY]),
    rows=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_shard_writer_any_shape_round_trips(tmp_path_factory, shape, dtype, encoding, rows, seed):
    rng = np.random.default_rng(seed)
    if encoding == DICTIONARY and dtype != np.uint8:
        encoding = PLAIN
    column = ArrayColumn("a", shape, np.dtype(dtype), encoding)
    arrays = [(rng.random(shape) * 250).astype(dtype) for _ in range(rows)]
    path = tmp_path_factory.mktemp("rt") / "a.parquet"
    columns = [column, ValueColumn("filename", "string"), ValueColumn("preprocessed", "bool")]
    with ShardWriter(path, columns, {}, {"a": 1, "filename": 1, "preprocessed": 1}) as writer:
        writer.write_rows([{"a": a, "filename": f"r{i}", "preprocessed": i % 2 == 0} for i, a in enumerate(arrays)])
    table = pq.read_table(path)
    assert table.column("filename").to_pylist() == [f"r{i}" for i in range(rows)]
    assert table.column("preprocessed").to_pylist() == [i % 2 == 0 for i in range(rows)]
    for got, want in zip(table.column("a").to_pylist(), arrays, strict=True):
        np.testing.assert_array_equal(np.array(got, dtype=dtype), want)


def test_level_runs_small_shapes():
    assert level_runs((3,)) == [(0, 1), (1, 2)]
    assert level_runs((2, 3)) == [(0, 1), (2, 2), (1, 1), (2, 2)]
    assert level_runs((2, 1, 2)) == [(0, 1), (3, 1), (1, 1), (3, 1)]


@settings(max_examples=40, deadline=None)
@given(
    count=st.one_of(st.integers(1, 50), st.sampled_from([640, 1009, 2 * 400 * 640])),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_split_streams_equals_numpy_transpose(count, dtype, seed):
    values = np.random.default_rng(seed).integers(0, 255, size=count * np.dtype(dtype).itemsize, dtype=np.uint8).view(dtype)
    out = np.full(values.nbytes, 7, dtype=np.uint8)
    split_streams(values, out)
    expected = values.view(np.uint8).reshape(count, values.dtype.itemsize).T.reshape(-1)
    assert np.array_equal(out, expected)


def test_split_streams_hand_values():
    values = np.array([0x04030201, 0x08070605], dtype="<u4")
    out = np.zeros(8, dtype=np.uint8)
    split_streams(values, out)
    assert out.tolist() == [1, 5, 2, 6, 3, 7, 4, 8]


def test_add_row_and_end_row_group_write_the_same_bytes_as_write_rows(tmp_path):
    rows = _rows(3)
    with open_shard_writer(tmp_path / "batch.parquet", compression_level=2) as writer:
        writer.write_rows(rows[:2])
        writer.write_rows(rows[2:])
    with open_shard_writer(tmp_path / "rows.parquet", compression_level=2) as writer:
        for row in rows[:2]:
            writer.add_row(row)
        writer.end_row_group()
        writer.end_row_group()  # no rows added: no empty row group
        writer.add_row(rows[2])
        writer.end_row_group()
    assert (tmp_path / "batch.parquet").read_bytes() == (tmp_path / "rows.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "rows.parquet").metadata.num_row_groups == 2


def test_shard_writer_later_smaller_row_groups_keep_no_stale_pages(tmp_path):
    # The column buffers are reused across row groups: a smaller group must not carry
    # pages left over from a bigger one.
    groups = [_rows(3), _rows(1, start=3), _rows(2, start=4)]
    path = tmp_path / "groups.parquet"
    with open_shard_writer(path, compression_level=2) as writer:
        for rows in groups:
            writer.write_rows(rows)
    assert writer.sha256 == sha256_file(path)
    metadata = pq.ParquetFile(path).metadata
    assert [metadata.row_group(i).num_rows for i in range(3)] == [3, 1, 2]
    table = pq.read_table(path)
    expected = [row for rows in groups for row in rows]
    assert table.column("filename").to_pylist() == [row["filename"] for row in expected]
    for got, row in zip(table.column("dist_map").to_numpy(), expected, strict=True):
        np.testing.assert_array_equal(np.stack([np.stack(plane) for plane in got]), row["dist_map"])


def test_add_row_rejects_wrong_shape_and_adds_nothing(tmp_path):
    rows = _rows(2)
    bad = dict(rows[1], dist_map=rows[1]["dist_map"][:, :200])
    path = tmp_path / "x.parquet"
    with open_shard_writer(path, compression_level=2) as writer:
        writer.add_row(rows[0])
        with pytest.raises(ValueError, match="dist_map: row 000001 has shape"):
            writer.add_row(bad)
        writer.end_row_group()
    table = pq.read_table(path)
    assert table.num_rows == 1 and table.column("filename").to_pylist() == ["000000"]


def test_split_streams_copies_when_opencv_allocates_new_planes(monkeypatch):
    import cv2

    real_split = cv2.split
    monkeypatch.setattr(cv2, "split", lambda source, planes: tuple(p.copy() for p in real_split(source)))
    values = np.arange(1, 641, dtype="<f4")
    out = np.zeros(values.nbytes, dtype=np.uint8)
    split_streams(values, out)
    assert np.array_equal(out, values.view(np.uint8).reshape(-1, 4).T.reshape(-1))


def test_dictionary_values_are_one_bit_packed_run_then_one_value_rle_runs():
    column = ArrayColumn("a", (2, 5), np.dtype(np.uint8), DICTIONARY)
    page = column.page_buffer()
    values = page[len(column.levels()) :]
    column.encode_values(np.arange(1, 11, dtype=np.uint8).reshape(2, 5), values)
    # bit width 8; header (1 group << 1 | bit-packed); 8 index bytes; RLE runs (1 << 1) of 9 and of 10
    assert values.tolist() == [8, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 0x02, 9, 0x02, 10]


def test_array_column_rejects_dictionary_for_floats():
    with pytest.raises(ValueError, match="needs uint8"):
        ArrayColumn("a", (2,), np.dtype(np.float32), DICTIONARY)


def test_value_column_rejects_unknown_value_types():
    with pytest.raises(ValueError, match="column n: unknown value type 'int64'"):
        ValueColumn("n", "int64")


def test_shape_error_names_the_row_by_number_without_a_string_column(tmp_path):
    column = ArrayColumn("a", (2, 2), np.dtype(np.uint8))
    with pytest.raises(ValueError, match=r"a: row 1 has shape \(3,\)"), ShardWriter(tmp_path / "x.parquet", [column], {}, {"a": 1}) as writer:
        writer.add_row({"a": np.zeros((2, 2), np.uint8)})
        writer.add_row({"a": np.zeros(3, np.uint8)})
