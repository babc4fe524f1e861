"""Parquet shard settings and helpers: column encodings, the HF metadata, checksums, atomic moves.

`open_shard_writer` gives the fast fixed-schema writer used by precompute
(`visionassist_seg.data.parquet_writer`); `rows_to_table` + `parquet_options` write the
same rows with pyarrow's general ParquetWriter, which the tests and the benchmark use
as the reference for what the files must read back as.
"""

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
        "use_byte_stream_split": [leaf_path("image"), leaf_path("label"), leaf_path("dist_map")],
        "write_statistics": False,
    }


def shard_columns():  # -> list[ArrayColumn]
    """Return the array columns of a shard with their encodings.

    BYTE_STREAM_SPLIT for uint8 columns (parquet stores them as 4-byte INT32: the three
    high-byte streams are zeros that cost nothing to write or compress) and dist_map
    (exponent and mantissa bytes compress far better apart); PLAIN for the sparse weights.
    """
    from visionassist_seg.data.parquet_writer import ArrayColumn
    from visionassist_seg.ops.sample import HEIGHT, WIDTH

    return [
        ArrayColumn("image", (HEIGHT, WIDTH), np.dtype(np.uint8), byte_stream_split=True),
        ArrayColumn("label", (HEIGHT, WIDTH), np.dtype(np.uint8), byte_stream_split=True),
        ArrayColumn("spatial_weights", (HEIGHT, WIDTH), np.dtype(np.float32), byte_stream_split=False),
        ArrayColumn("dist_map", (2, HEIGHT, WIDTH), np.dtype(np.float32), byte_stream_split=True),
    ]


_hf_metadata: dict[bytes, bytes] = {}


def hf_key_value_metadata() -> dict[bytes, bytes]:
    """Return the footer metadata pyarrow writes for the dataset features (ARROW:schema, huggingface).

    Taken from an empty file that pyarrow writes, so readers rebuild exactly the HF
    Array2D/Array3D extension types. Computed once per process (it imports `datasets`,
    about a second); worker processes receive it from their parent instead.
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

    import pyarrow.parquet as pq

    from visionassist_seg.data.schema import dataset_features

    buffer = io.BytesIO()
    pq.write_table(dataset_features().arrow_schema.empty_table(), buffer)
    return dict(pq.read_metadata(io.BytesIO(buffer.getvalue())).metadata)


def open_shard_writer(path: Path, compression_level: int):  # -> ShardWriter
    """Return a fixed-schema shard writer: zstd level 1, except ``compression_level`` for dist_map.

    dist_map carries most of the bytes, so it alone gets the stronger level; the label and
    weights columns are nearly all zeros and the image is sensor noise, where higher
    levels buy little.
    """
    from visionassist_seg.data.parquet_writer import ShardWriter

    levels = {name: 1 for name in ("image", "label", "spatial_weights", "filename", "preprocessed")}
    levels["dist_map"] = compression_level
    return ShardWriter(path, shard_columns(), hf_key_value_metadata(), levels)


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
