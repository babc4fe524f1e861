"""Tiny parquet datasets in the precomputed (and legacy) schema, written with pyarrow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from arrow_rows import nested_list_array
from visionassist_seg.ops import HEIGHT, WIDTH, preprocess_sample


def eye_frame(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return a (raw image, 4-class label) pair: a dark pupil inside an iris on a bright background."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    cx, cy = rng.uniform(200, 440), rng.uniform(140, 260)
    iris, pupil = rng.uniform(70, 100), rng.uniform(25, 40)
    r = np.hypot(xs - cx, ys - cy)
    label = np.zeros((HEIGHT, WIDTH), np.uint8)
    label[np.abs(xs - cx) < 250] = 1
    label[r < iris] = 2
    label[r < pupil] = 3
    image = np.choose(label, [170, 200, 110, 30]).astype(np.float32) + rng.normal(0, 6, label.shape)
    return np.clip(image, 0, 255).astype(np.uint8), label


PRECOMPUTE_OPTIONS = {
    # As `vaseg precompute` writes shards: no dictionary for arrays, byte-stream-split floats.
    "use_dictionary": ["filename"],
    "use_byte_stream_split": ["spatial_weights.list.element.list.element", "dist_map.list.element.list.element.list.element"],
}


def write_split(
    path: Path, rows: list[dict], *, legacy: bool = False, row_group_size: int = 4, **options
) -> None:
    """Write ``rows`` as one shard: HF feature schema, or the legacy flat-list form without `preprocessed`.

    ``options`` go to `pyarrow.parquet.write_table` (default: precompute's options; pyarrow's
    defaults for legacy shards).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from visionassist_seg.data.schema import dataset_features

    arrays = ("image", "label", "spatial_weights", "dist_map")
    if legacy:
        columns = {
            name: pa.array([row[name].astype(np.int64 if name in ("image", "label") else np.float64).ravel() for row in rows])
            for name in arrays
        }
        columns["filename"] = pa.array([row["filename"] for row in rows])
        table = pa.table(columns)
    else:
        schema = dataset_features().arrow_schema
        cols = []
        for fld in schema:
            if fld.name in arrays:
                cols.append(pa.ExtensionArray.from_storage(fld.type, nested_list_array(np.stack([r[fld.name] for r in rows]))))
            else:
                cols.append(pa.array([r[fld.name] for r in rows], type=fld.type))
        table = pa.Table.from_arrays(cols, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not options and not legacy:
        options = PRECOMPUTE_OPTIONS
    options = {"compression": "zstd", **options}
    pq.write_table(table, path, row_group_size=row_group_size, **options)


def make_rows(count: int, seed: int, *, legacy: bool = False) -> list[dict]:
    """Return ``count`` preprocessed rows (legacy rows keep the raw image, as the old dataset did)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        raw, label = eye_frame(rng)
        sample = preprocess_sample(raw, label)
        rows.append(
            {
                "image": raw if legacy else sample.image,
                "label": sample.label,
                "spatial_weights": sample.spatial_weights,
                "dist_map": sample.dist_map,
                "filename": f"{seed}_{i:03d}",
                "preprocessed": True,
            }
        )
    return rows


def write_dataset(
    root: Path, train: int = 8, validation: int = 4, *, legacy: bool = False, seed: int = 0, shard_writer: bool = False
) -> Path:
    """Write a tiny dataset folder (data/train-00000-of-00001.parquet, data/validation-...) and return it.

    ``shard_writer`` writes with `vaseg precompute`'s own writer (one data page per row)
    instead of pyarrow's.
    """
    write = write_vaseg_split if shard_writer else write_split
    write(root / "data" / "train-00000-of-00001.parquet", make_rows(train, seed, legacy=legacy), legacy=legacy)
    write(root / "data" / "validation-00000-of-00001.parquet", make_rows(validation, seed + 1, legacy=legacy), legacy=legacy)
    return root


def write_vaseg_split(path: Path, rows: list[dict], *, legacy: bool = False, row_group_size: int = 4) -> None:
    """Write ``rows`` as one shard with precompute's `ShardWriter`, in row groups of ``row_group_size``."""
    from visionassist_seg.data.shards import open_shard_writer

    if legacy:
        raise ValueError("precompute's writer only writes the current schema")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_shard_writer(path, 2) as writer:
        for start in range(0, len(rows), row_group_size):
            writer.write_rows(rows[start : start + row_group_size])
