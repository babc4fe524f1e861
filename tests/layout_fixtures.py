"""Tiny datasets in each layout `datasets.load_dataset` accepts (importable by name from any test folder).

- ``seed``: the reference precompute's Hub layout, ``data/{split}/shard_00000.parquet``, legacy
  columns written by `pyarrow.parquet.write_table` with its defaults, no card configs, no manifest;
- ``vaseg``: vaseg's own ``data/{split}-00000-of-0000N.parquet`` with a card naming them;
- ``configs``: files where no default pattern finds them, named by the card's ``configs:``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ARRAYS = ("image", "label", "spatial_weights", "dist_map")
CONFIGS_DIRS = {"train": "frames/fit", "validation": "frames/holdout"}


def write_rows(path: Path, rows: list[dict], *, legacy: bool, **options) -> None:
    """Write ``rows`` as one parquet file: legacy flat lists (the seed's table) or the HF feature schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from visionassist_seg.data.schema import dataset_features
    from arrow_rows import nested_list_array

    if not rows:
        table = _empty_table(legacy)
    elif legacy:
        # The seed's table: flat lists of the arrays' own dtypes (uint8 image and label, float32 weights,
        # float64 distance maps after numpy's promotion), the file stem, no `preprocessed`.
        dtypes = {"image": np.uint8, "label": np.uint8, "spatial_weights": np.float32, "dist_map": np.float64}
        columns = {name: pa.array([np.asarray(row[name], dtypes[name]).ravel() for row in rows]) for name in ARRAYS}
        columns["filename"] = pa.array([row["filename"] for row in rows], pa.string())
        table = pa.table(columns)
    else:
        schema = dataset_features().arrow_schema
        columns = []
        for field in schema:
            if field.name in ARRAYS:
                storage = nested_list_array(np.stack([row[field.name] for row in rows]))
                columns.append(pa.ExtensionArray.from_storage(field.type, storage.cast(field.type.storage_type)))
            else:
                columns.append(pa.array([row[field.name] for row in rows], type=field.type))
        table = pa.Table.from_arrays(columns, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **options)


def _empty_table(legacy: bool):  # -> pyarrow.Table
    """Return a table with no rows in the legacy or the current schema."""
    import pyarrow as pa

    from visionassist_seg.data.schema import dataset_features

    if not legacy:
        return dataset_features().arrow_schema.empty_table()
    leaves = {"image": pa.uint8(), "label": pa.uint8(), "spatial_weights": pa.float32(), "dist_map": pa.float64()}
    fields = [pa.field(name, pa.list_(leaf)) for name, leaf in leaves.items()] + [pa.field("filename", pa.string())]
    return pa.schema(fields).empty_table()


def _chunks(rows: list[dict], per_file: int) -> list[list[dict]]:
    return [rows[i : i + per_file] for i in range(0, len(rows), per_file)] or [[]]


def relative_files(layout: str, split: str, count: int) -> list[str]:
    """Return where ``layout`` puts the ``count`` files of ``split``."""
    if layout == "seed":
        return [f"data/{split}/shard_{i:05d}.parquet" for i in range(count)]
    if layout == "vaseg":
        return [f"data/{split}-{i:05d}-of-{count:05d}.parquet" for i in range(count)]
    return [f"{CONFIGS_DIRS[split]}/part{i}.parquet" for i in range(count)]


def card(layout: str) -> str | None:
    """Return the README.md of ``layout`` (None: the seed pushed no card configs)."""
    if layout == "seed":
        return None
    paths = {"vaseg": "data/{split}-*", "configs": "{folder}/*.parquet"}[layout]
    entries = "".join(
        f"  - split: {split}\n    path: {paths.format(split=split, folder=folder)}\n"
        for split, folder in CONFIGS_DIRS.items()
    )
    return f"---\nlicense: other\nconfigs:\n- config_name: default\n  data_files:\n{entries}---\n# eyes\n"


def write_layout(root: Path, layout: str, rows_by_split: dict[str, list[dict]], *, per_file: int = 4) -> Path:
    """Write ``rows_by_split`` in ``layout`` under ``root`` (seed: legacy columns, pyarrow defaults); return root."""
    legacy = layout == "seed"
    for split, rows in rows_by_split.items():
        chunks = _chunks(rows, per_file)
        for relative, chunk in zip(relative_files(layout, split, len(chunks)), chunks):
            options = {} if legacy else {"compression": "zstd", "row_group_size": 2}
            write_rows(root / relative, chunk, legacy=legacy, **options)
    text = card(layout)
    if text is not None:
        (root / "README.md").write_text(text, encoding="utf-8")
    return root


def eye_rows(count: int, seed: int, split: str, *, legacy: bool = False) -> list[dict]:
    """Return ``count`` rows made from vaseg's synthetic eyes (legacy rows keep the raw image, as the seed did)."""
    from visionassist_seg.data.synthetic import make_sample
    from visionassist_seg.ops import preprocess_sample

    rows = []
    for index in range(count):
        image, label = make_sample(seed, split, index)
        done = preprocess_sample(image, label)
        rows.append(
            {
                "image": image if legacy else done.image,
                "label": done.label,
                "spatial_weights": done.spatial_weights,
                "dist_map": done.dist_map,
                "filename": f"{index:06d}",  # both splits number from zero, as OpenEDS does
                "preprocessed": True,
            }
        )
    return rows
