"""Parquet shard writing: numpy rows -> Arrow (HF Array2D/Array3D) -> zstd parquet, atomically."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np

ARRAY_COLUMNS = ("image", "label", "spatial_weights", "dist_map")
FLOAT_COLUMNS = ("spatial_weights", "dist_map")


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
    depth = {"image": 2, "label": 2, "spatial_weights": 2, "dist_map": 3}[name]
    return name + ".list.element" * depth


def parquet_options(compression_level: int) -> dict:
    """Return the ParquetWriter options used for every shard (kept together so output is reproducible).

    - image, dist_map: BYTE_STREAM_SPLIT (parquet stores uint8 as 4-byte INT32; for
      floats the exponent and mantissa bytes land in separate, far more compressible
      streams), zstd. BSS only applies without dictionary encoding.
    - label, spatial_weights: two distinct values, nearly all zero: plain + zstd level 1
      shrinks them to well under 1 KB per row already.
    - dist_map carries most of the bytes, so it alone gets ``compression_level``.
    """
    fast = 1
    return {
        "compression": "zstd",
        "compression_level": {
            leaf_path("image"): fast,
            leaf_path("label"): fast,
            leaf_path("spatial_weights"): fast,
            leaf_path("dist_map"): compression_level,
            "filename": fast,
            "preprocessed": fast,
        },
        "use_dictionary": ["filename"],
        "use_byte_stream_split": [leaf_path("image"), leaf_path("dist_map")],
        "write_statistics": False,
    }


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
