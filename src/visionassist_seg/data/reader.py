"""Read precomputed parquet shards straight into numpy arrays (no Python lists, no Arrow cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from visionassist_seg.data.schema import ARRAY_DTYPES, ARRAY_SHAPES
from visionassist_seg.errors import VasegError

__all__ = ["ARRAY_DTYPES", "ARRAY_SHAPES", "column_to_numpy", "read_batches"]


def column_to_numpy(column, name: str, source: str = "") -> np.ndarray:  # column: pyarrow (Chunked)Array
    """Return a list column (nested Array2D/Array3D or legacy flat list) as an (N, *shape) array.

    The leaf values keep their stored dtype (legacy data may hold int64 or float64);
    callers cast where they need the schema dtype.

    Raises:
        VasegError: the column's values do not add up to N rows of the expected shape.
    """
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column.type, pa.ExtensionType):
        column = column.storage
    rows = len(column)
    values = column
    while pa.types.is_list(values.type) or pa.types.is_large_list(values.type) or pa.types.is_fixed_size_list(
        values.type
    ):
        values = values.flatten()
    shape = ARRAY_SHAPES[name]
    flat = values.to_numpy(zero_copy_only=False)
    if flat.size != rows * int(np.prod(shape)):
        raise VasegError(
            f"{source or 'dataset'}: column '{name}' holds {flat.size} values for {rows} rows, expected "
            f"{rows} x {'x'.join(map(str, shape))}. The shard is not a vaseg/OpenEDS dataset or is corrupt; "
            "recreate it with `vaseg precompute`."
        )
    return flat.reshape((rows, *shape))


def read_batches(
    path: Path, columns: list[str] | None = None, batch_size: int = 16, row_groups: list[int] | None = None
) -> Iterator[dict[str, np.ndarray | list]]:
    """Yield dicts of numpy arrays (arrays) or lists (filename, preprocessed) from one shard.

    Memory stays bounded by ``batch_size`` rows whatever the shard size.
    """
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as err:
        raise VasegError(f"Cannot read parquet shard {path}: {err}. Delete it and rerun `vaseg precompute`.") from None
    names = columns or [c for c in parquet.schema_arrow.names]
    for batch in parquet.iter_batches(batch_size=batch_size, columns=names, row_groups=row_groups):
        out: dict[str, np.ndarray | list] = {}
        for name in names:
            column = batch.column(name)
            out[name] = column_to_numpy(column, name, str(path)) if name in ARRAY_SHAPES else column.to_pylist()
        yield out
