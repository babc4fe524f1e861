"""How vaseg stores the schema in parquet shards: column encodings, zstd levels, the HF footer metadata.

`open_shard_writer` hands `visionassist_seg.parquet.writer.ShardWriter` the columns of
`schema.SCHEMA` with their encodings. Checksums and atomic moves of finished files
live here too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from visionassist_seg.data.schema import COLUMNS, SCHEMA
from visionassist_seg.parquet.columns import ArrayColumn, ValueColumn
from visionassist_seg.parquet.writer import ShardWriter

# How each array column's values are encoded (`parquet.writer.ArrayColumn`). The uint8
# columns are INT32 in parquet: dictionary-encoded over 0..255 they stay one byte a value
# (the page holds the raw bytes), which pyarrow >= 15 and duckdb >= 1.1 read; INT32
# BYTE_STREAM_SPLIT, the earlier choice, needs pyarrow >= 16 and duckdb >= 2.0, and PLAIN
# compresses 40% worse (benchmarks/uint8_encodings.py). dist_map: BYTE_STREAM_SPLIT on
# FLOAT (exponent and mantissa bytes compress far better apart; every reader above has
# it). spatial_weights: PLAIN (sparse, zstd does well on it as it is).
COLUMN_ENCODINGS = {"image": "dictionary", "label": "dictionary", "spatial_weights": "plain", "dist_map": "byte_stream_split"}


def compression_levels(compression_level: int) -> dict[str, int]:
    """Return the zstd level of every column: ``compression_level`` for dist_map, 1 elsewhere.

    dist_map carries most of the bytes, so it alone gets the stronger level; the label and
    weights columns are nearly all zeros and the image is sensor noise, where higher
    levels buy little.
    """
    levels = {name: 1 for name in COLUMNS}
    levels["dist_map"] = compression_level
    return levels


def shard_columns() -> list[ArrayColumn | ValueColumn]:
    """Return the columns of a shard (`schema.SCHEMA`, in order) with the array columns' encodings."""
    return [
        ArrayColumn(c.name, c.shape, np.dtype(c.dtype), COLUMN_ENCODINGS[c.name]) if c.shape else ValueColumn(c.name, c.dtype)
        for c in SCHEMA
    ]


_hf_metadata: dict[bytes, bytes] = {}


def hf_key_value_metadata() -> dict[bytes, bytes]:
    """Return the footer metadata pyarrow writes for the dataset features (ARROW:schema, huggingface).

    Taken from an empty file that pyarrow writes for `hf_arrow_schema`, so readers
    rebuild exactly the HF Array2D/Array3D extension types. Computed once per process
    (a few ms); worker processes receive it from their parent.
    """
    if not _hf_metadata:
        _hf_metadata.update(_pyarrow_metadata())
    return dict(_hf_metadata)


def use_hf_key_value_metadata(metadata: dict[bytes, bytes]) -> None:
    """Install metadata computed by `hf_key_value_metadata` in another process."""
    _hf_metadata.clear()
    _hf_metadata.update(metadata)


def _pyarrow_metadata() -> dict[bytes, bytes]:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from visionassist_seg.data.schema import hf_arrow_schema

    buffer = io.BytesIO()
    # Not Schema.empty_table(): that imports pandas (0.2 s, 50 MB of memory).
    pq.write_table(pa.Table.from_batches([], schema=hf_arrow_schema()), buffer)
    return dict(pq.read_metadata(io.BytesIO(buffer.getvalue())).metadata)


def open_shard_writer(path: Path, compression_level: int) -> ShardWriter:
    """Return a shard writer for `shard_columns` with `compression_levels`."""
    return ShardWriter(path, shard_columns(), hf_key_value_metadata(), compression_levels(compression_level))


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Return the hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
