"""Every column of a precomputed shard uses only encodings that pyarrow 15 and duckdb 1.1 read.

Checked once by hand with those readers (benchmarks/old_readers.py); here from the file
metadata. INT32 BYTE_STREAM_SPLIT, which vaseg once wrote for the uint8 columns, needs
pyarrow >= 16 and duckdb >= 2.0 (REFERENCE section 7).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from visionassist_seg.parquet.columns import BYTE_STREAM_SPLIT
from visionassist_seg.parquet.writer import ShardWriter
from visionassist_seg.data.schema import ARRAY_COLUMNS, list_shards
from visionassist_seg.data.shards import compression_levels, hf_key_value_metadata, shard_columns
from visionassist_seg.data.synthetic import make_sample
from visionassist_seg.ops import preprocess_sample

_DICTIONARY_AND_PLAIN = {"PLAIN", "PLAIN_DICTIONARY", "RLE_DICTIONARY", "RLE"}
# Encodings (values, levels, dictionary pages) that pyarrow 15.0.2 and duckdb 1.1.3 both read, per physical type.
OLD_READERS_READ = {
    "BOOLEAN": {"PLAIN", "RLE"},
    "INT32": _DICTIONARY_AND_PLAIN | {"DELTA_BINARY_PACKED"},
    "INT64": _DICTIONARY_AND_PLAIN | {"DELTA_BINARY_PACKED"},
    "FLOAT": _DICTIONARY_AND_PLAIN | {"BYTE_STREAM_SPLIT"},
    "DOUBLE": _DICTIONARY_AND_PLAIN | {"BYTE_STREAM_SPLIT"},
    "BYTE_ARRAY": _DICTIONARY_AND_PLAIN,
}
# parquet.thrift Encoding numbers, for page headers.
_ENCODING_NAMES = {0: "PLAIN", 2: "PLAIN_DICTIONARY", 3: "RLE", 5: "DELTA_BINARY_PACKED", 8: "RLE_DICTIONARY", 9: "BYTE_STREAM_SPLIT"}


def unreadable_columns(path: Path) -> list[str]:
    """Return ``"row group, column: encodings"`` for every column chunk of ``path`` that the old readers cannot read."""
    metadata = pq.ParquetFile(path).metadata
    problems = []
    for group in range(metadata.num_row_groups):
        for index in range(metadata.num_columns):
            chunk = metadata.row_group(group).column(index)
            if not set(chunk.encodings) <= OLD_READERS_READ[chunk.physical_type]:
                problems.append(f"row group {group}, {chunk.path_in_schema} ({chunk.physical_type}): {chunk.encodings}")
    return problems


def page_encodings(path: Path) -> dict[str, set[str]]:
    """Return the value encodings named in the page headers of each array column (all row groups)."""
    from visionassist_seg.parquet.reader import locate_chunk, page_table

    parquet = pq.ParquetFile(path)
    data = path.read_bytes()
    found: dict[str, set[str]] = {}
    for group in range(parquet.metadata.num_row_groups):
        for name in ARRAY_COLUMNS:
            chunk = locate_chunk(parquet.metadata, parquet.schema, group, name)
            dictionary, pages = page_table(data[chunk.start : chunk.start + chunk.length], chunk)
            encodings = found.setdefault(name, set())
            if dictionary is not None:
                encodings.add(_ENCODING_NAMES[dictionary.header["dictionary_page_header"]["encoding"]])
            encodings.update(_ENCODING_NAMES[page.encoding] for page in pages)
    return found


def test_precompute_shards_use_only_encodings_old_readers_read(cli_dataset):
    shards = [path for paths in list_shards(cli_dataset["dataset"]).values() for path in paths]
    assert shards
    for path in shards:
        assert unreadable_columns(path) == [], path
        encodings = page_encodings(path)
        # The page headers agree with the footer, and the uint8 columns are dictionary pages.
        metadata = pq.ParquetFile(path).metadata.row_group(0)
        for index, name in enumerate(ARRAY_COLUMNS):  # the schema's first columns
            assert encodings[name] <= set(metadata.column(index).encodings), name
        assert encodings["image"] == encodings["label"] == {"PLAIN", "RLE_DICTIONARY"}
        assert encodings["dist_map"] == {"BYTE_STREAM_SPLIT"}


def test_old_byte_stream_split_shards_fail_the_check(tmp_path):
    # The check can fail: shards written before the change (INT32 BYTE_STREAM_SPLIT) do.
    columns = [dataclasses.replace(c, encoding=BYTE_STREAM_SPLIT) if c.dtype == np.uint8 else c for c in shard_columns()]
    processed = preprocess_sample(*make_sample(0, "train", 0))
    row = {name: getattr(processed, name) for name in ("image", "label", "spatial_weights", "dist_map")}
    path = tmp_path / "old.parquet"
    with ShardWriter(path, columns, hf_key_value_metadata(), compression_levels(2)) as writer:
        writer.write_rows([dict(row, filename="0000000", preprocessed=True)])
    problems = unreadable_columns(path)
    assert len(problems) == 2 and os.path.commonprefix(problems) == "row group 0, "
    assert "image.list.element.list.element (INT32)" in problems[0] and "label" in problems[1]
