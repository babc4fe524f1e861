"""Builders for a tiny precomputed dataset in the current and legacy formats, and a way to break one row."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from layout_fixtures import ARRAYS, write_rows
from visionassist_seg.data.schema import shard_name
from visionassist_seg.ops import preprocess_sample

SHARD_ROWS = 4
ROW_GROUP_ROWS = 2
RAW_COUNT = 8  # train rows; validation gets a quarter (2)


def raw_rows(raw_root: Path, split: str, *, legacy: bool = False) -> list[dict]:
    """Return the dataset rows of one raw split: the published preprocessing of every labelled image."""
    from visionassist_seg.data.raw import list_split, read_image, read_label

    rows = []
    for sample in list_split(raw_root, split):
        image = read_image(sample.image)
        done = preprocess_sample(image, read_label(sample.label))
        rows.append(
            {
                "image": image if legacy else done.image,
                "label": done.label,
                "spatial_weights": done.spatial_weights,
                "dist_map": done.dist_map,
                "filename": sample.stem,
                "preprocessed": True,
            }
        )
    return rows


def write_shard(path: Path, rows: list[dict], *, legacy: bool = False, compression: str = "zstd") -> None:
    """Write ``rows`` as one parquet shard: the HF feature schema, or the legacy flat lists without `preprocessed`."""
    if not legacy:
        write_rows(path, rows, legacy=False, row_group_size=ROW_GROUP_ROWS, compression=compression)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Legacy rows keep the dtypes `raw_rows` gave them (write_rows casts to the seed's dtypes).
    columns = {name: pa.array([np.asarray(row[name]).ravel() for row in rows]) for name in ARRAYS}
    columns["filename"] = pa.array([row["filename"] for row in rows], pa.string())
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, row_group_size=ROW_GROUP_ROWS, compression=compression)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_dataset(out: Path, rows_by_split: dict[str, list[dict]], *, legacy: bool = False) -> Path:
    """Write a dataset folder like precompute's: data/ shards, README.md and manifest.json with sha256s."""
    manifest = {"format": "vaseg-precomputed", "version": 1, "splits": {}}
    for split, rows in rows_by_split.items():
        write_split(out, split, rows, legacy=legacy, manifest=manifest)
    (out / "README.md").write_text("---\nlicense: mit\n---\n# test dataset\n", encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return out


def write_split(out: Path, split: str, rows: list[dict], *, legacy: bool = False, manifest: dict | None = None) -> None:
    """(Re)write one split's shards (SHARD_ROWS rows each) and record them in ``manifest``."""
    for old in (out / "data").glob(f"{split}-*.parquet"):
        old.unlink()
    chunks = [rows[i : i + SHARD_ROWS] for i in range(0, len(rows), SHARD_ROWS)]
    entries = []
    for index, chunk in enumerate(chunks):
        relative = f"data/{shard_name(split, index, len(chunks))}"
        write_shard(out / relative, chunk, legacy=legacy)
        entries.append({"file": relative, "rows": len(chunk), "sha256": _sha256(out / relative)})
    if manifest is not None:
        manifest["splits"][split] = {"rows": len(rows), "shards": entries}


def read_rows(dataset: Path, split: str) -> list[dict]:
    """Return every row of one split as numpy arrays (current format)."""
    from visionassist_seg.data.reader import read_batches
    from visionassist_seg.data.schema import list_shards

    rows = []
    for path in list_shards(dataset)[split]:
        for batch in read_batches(path):
            for i in range(len(batch["filename"])):
                rows.append({name: (value[i].copy() if isinstance(value, np.ndarray) else value[i]) for name, value in batch.items()})
    return rows


def edit_row(dataset: Path, split: str, row: int, **changes) -> dict:
    """Rewrite ``split`` with ``changes`` applied to row ``row``, keeping manifest.json true to the new shards.

    A change is either a new value or a callable that edits the row dict. Returns the edited row.
    """
    rows = read_rows(dataset, split)
    for name, change in changes.items():
        if callable(change):
            change(rows[row])
        else:
            rows[row][name] = change
    manifest_path = dataset / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    write_split(dataset, split, rows, manifest=manifest)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return rows[row]
