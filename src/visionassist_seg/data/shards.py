"""Parquet shard settings and helpers: column encodings, the HF metadata, checksums, atomic moves.

`open_shard_writer` gives the fast fixed-schema writer used by precompute
(`visionassist_seg.parquet.writer`); `rows_to_table` + `parquet_options` write the
same rows with pyarrow's general ParquetWriter, which the tests and the benchmark use
as the reference for what the files must read back as.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from visionassist_seg.data.schema import ARRAY_DTYPES, ARRAY_SHAPES

ARRAY_COLUMNS = tuple(ARRAY_SHAPES)
# How each array column's values are encoded (`parquet.writer.ArrayColumn`). The uint8
# columns are INT32 in parquet: dictionary-encoded over 0..255 they stay one byte a value
# (the page holds the raw bytes), which pyarrow >= 15 and duckdb >= 1.1 read; INT32
# BYTE_STREAM_SPLIT, the earlier choice, needs pyarrow >= 16 and duckdb >= 2.0, and PLAIN
# compresses 40% worse (benchmarks/uint8_encodings.py). dist_map: BYTE_STREAM_SPLIT on
# FLOAT (exponent and mantissa bytes compress far better apart; every reader above has
# it). spatial_weights: PLAIN (sparse, zstd does well on it as it is).
COLUMN_ENCODINGS = {"image": "dictionary", "label": "dictionary", "spatial_weights": "plain", "dist_map": "byte_stream_split"}


def nested_list_array(batch: np.ndarray):  # -> pyarrow.ListArray
    """Return an (N, *shape) array as N rows of nested Arrow lists without copying the values.

    Shape:
        batch: (N, d1, ..., dk) -> ListArray of N rows, k levels deep (HF Array{k}D storage)
    """
    import pyarrow as pa

    values = np.ascontiguousarray(batch).reshape(-1)
    array = pa.array(values)
    # Build from the innermost level out: each level groups len/dim items of the one below.
    for dim in reversed(batch.shape[1:]):
        groups = len(array) // dim
        offsets = pa.array(np.arange(0, groups * dim + 1, dim, dtype=np.int32))
        array = pa.ListArray.from_arrays(offsets, array)
    return array


def rows_to_table(rows: Sequence[dict], features):  # -> pyarrow.Table
    """Return a table of dataset rows with the HF feature schema (extension types + metadata).

    Each row holds numpy ``image``, ``label``, ``spatial_weights``, ``dist_map``, a
    ``filename`` string and a ``preprocessed`` bool.
    """
    import pyarrow as pa

    schema = features.arrow_schema
    columns = []
    for field in schema:
        if field.name in ARRAY_COLUMNS:
            storage = nested_list_array(np.stack([row[field.name] for row in rows]))
            columns.append(pa.ExtensionArray.from_storage(field.type, storage))
        else:
            columns.append(pa.array([row[field.name] for row in rows], type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def leaf_path(name: str) -> str:
    """Return the parquet leaf column path of an array column (``dist_map.list.element.list...``)."""
    return name + ".list.element" * len(ARRAY_SHAPES[name])


def compression_levels(compression_level: int) -> dict[str, int]:
    """Return the zstd level of every column: ``compression_level`` for dist_map, 1 elsewhere.

    dist_map carries most of the bytes, so it alone gets the stronger level; the label and
    weights columns are nearly all zeros and the image is sensor noise, where higher
    levels buy little.
    """
    levels = {name: 1 for name in (*ARRAY_SHAPES, "filename", "preprocessed")}
    levels["dist_map"] = compression_level
    return levels


def parquet_options(compression_level: int) -> dict:
    """Return the ParquetWriter options used for every shard (kept together so output is reproducible).

    The same encodings as `open_shard_writer` (`COLUMN_ENCODINGS`; pyarrow builds its own
    dictionaries, in order of appearance, where vaseg's writer uses 0..255), zstd level 1
    everywhere except ``compression_level`` for dist_map. Byte-stream split only applies
    without dictionary encoding.
    """
    levels = compression_levels(compression_level)
    by_encoding = {kind: [leaf_path(n) for n, e in COLUMN_ENCODINGS.items() if e == kind] for kind in ("dictionary", "byte_stream_split")}
    return {
        "compression": "zstd",
        "compression_level": {leaf_path(n) if n in ARRAY_SHAPES else n: level for n, level in levels.items()},
        "use_dictionary": ["filename", *by_encoding["dictionary"]],
        "use_byte_stream_split": by_encoding["byte_stream_split"],
        "write_statistics": False,
    }


def shard_columns():  # -> list[ArrayColumn]
    """Return the array columns of a shard with their shapes, dtypes and encodings."""
    from visionassist_seg.parquet.columns import ArrayColumn

    return [ArrayColumn(name, shape, ARRAY_DTYPES[name], COLUMN_ENCODINGS[name]) for name, shape in ARRAY_SHAPES.items()]


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


def open_shard_writer(path: Path, compression_level: int):  # -> ShardWriter
    """Return a fixed-schema shard writer with `compression_levels`."""
    from visionassist_seg.parquet.writer import ShardWriter

    return ShardWriter(path, shard_columns(), hf_key_value_metadata(), compression_levels(compression_level))


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Return the hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def replace_atomic(tmp: Path, final: Path) -> None:
    """Move a fully written ``tmp`` onto ``final`` in one step (same filesystem)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


def write_json_atomic(path: Path, data: dict, *, sort_keys: bool = True) -> None:
    """Write ``data`` as indented JSON to ``path`` in one step: readers see the old file or the new one.

    Creates the parent folder, writes a ``.{name}.{pid}.tmp`` sibling, then `os.replace`s it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
