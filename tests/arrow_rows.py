"""Dataset rows written with pyarrow's own ParquetWriter: the reference vaseg's shard writer is compared with.

Used by the tests (shards in layouts vaseg does not write itself) and by
benchmarks/precompute.py (pyarrow's writing time for the same rows).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from visionassist_seg.data.schema import ARRAY_COLUMNS, ARRAY_SHAPES
from visionassist_seg.data.shards import COLUMN_ENCODINGS, compression_levels


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


def parquet_options(compression_level: int) -> dict:
    """Return pyarrow ParquetWriter options matching vaseg's shards.

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
