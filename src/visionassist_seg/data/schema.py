"""The precomputed dataset's schema (its one definition) and folder layout (REFERENCE.md section 3)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionassist_seg.ops.sample import HEIGHT, WIDTH

SPLITS = ("train", "validation")
DATA_DIR = "data"
MANIFEST = "manifest.json"
CARD = "README.md"


@dataclass(frozen=True)
class Column:
    """One column of a dataset row: numpy dtype name (or ``string``), array shape, meaning.

    Array columns (a non-empty ``shape``) are HF ``Array2D``/``Array3D`` features; the
    others are HF ``Value``s.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    description: str  # one line for the dataset card

    @property
    def feature_type(self) -> str:
        """Return the HF feature type: ``Array2D``, ``Array3D`` or ``Value``."""
        return f"Array{len(self.shape)}D" if self.shape else "Value"

    @property
    def type_text(self) -> str:
        """Return the column's type as the card and validate print it: ``float32 [2, 400, 640]``, ``string``."""
        return f"{self.dtype} [{', '.join(map(str, self.shape))}]" if self.shape else self.dtype


# The one definition of a precomputed row (REFERENCE.md section 3): everything else
# (HF features, the shard writer's columns, validate's checks, the card) derives from it.
SCHEMA: tuple[Column, ...] = (
    Column("image", "uint8", (HEIGHT, WIDTH), "IR eye image, gamma 0.8 then CLAHE (clip 1.5, 8x8 tiles)"),
    Column("label", "uint8", (HEIGHT, WIDTH), "0 background, 1 pupil"),
    Column("spatial_weights", "float32", (HEIGHT, WIDTH), "20 on a band around the pupil boundary, 0 elsewhere"),
    Column(
        "dist_map", "float32", (2, HEIGHT, WIDTH),
        "signed distance to each class (0 background, 1 pupil), divided by the image diagonal",
    ),  # fmt: skip
    Column("filename", "string", (), "file stem of the raw OpenEDS image"),
    Column("preprocessed", "bool", (), "True: gamma and CLAHE already applied (do not apply again)"),
)
COLUMNS = tuple(column.name for column in SCHEMA)
ARRAY_SHAPES: dict[str, tuple[int, ...]] = {column.name: column.shape for column in SCHEMA if column.shape}
ARRAY_DTYPES: dict[str, np.dtype] = {column.name: np.dtype(column.dtype) for column in SCHEMA if column.shape}
ARRAY_COLUMNS = tuple(ARRAY_SHAPES)
# vaseg's own shard names, as precompute writes them (readers resolve splits with data.splits).
SHARD_PATTERN = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")


def feature_dicts() -> dict[str, dict]:
    """Return the HF feature of every column as `datasets.Features.to_dict` writes it into parquet metadata."""
    features: dict[str, dict] = {}
    for column in SCHEMA:
        shape = {"shape": list(column.shape)} if column.shape else {}
        features[column.name] = {**shape, "dtype": column.dtype, "_type": column.feature_type}
    return features


def describe_columns() -> str:
    """Return the columns and their types in one line: ``image/label uint8 [400, 640], ...``.

    Neighbouring columns of the same type share one entry.
    """
    groups: list[tuple[list[str], str]] = []
    for column in SCHEMA:
        if groups and groups[-1][1] == column.type_text:
            groups[-1][0].append(column.name)
        else:
            groups.append(([column.name], column.type_text))
    return ", ".join(f"{'/'.join(names)} {text}" for names, text in groups)


def dataset_features():  # -> datasets.Features (imported lazily: datasets is slow to import)
    """Return the Hugging Face `Features` of a precomputed dataset row."""
    import datasets

    array_types = {2: datasets.Array2D, 3: datasets.Array3D}
    return datasets.Features(
        {
            column.name: array_types[len(column.shape)](column.shape, column.dtype) if column.shape else datasets.Value(column.dtype)
            for column in SCHEMA
        }
    )


def hf_arrow_schema():  # -> pyarrow.Schema
    """Return the Arrow schema of `dataset_features` as pyarrow serialises it, built without `datasets`.

    Importing `datasets` takes about half a second, more than a shard writer needs: its
    Array2D/Array3D columns are nested lists whose field metadata names the extension
    type (``ARROW:extension:metadata`` then ``ARROW:extension:name``, the order pyarrow
    writes them), and the ``huggingface`` schema metadata is `Features.to_dict` as JSON.
    A test checks that files written with either schema carry identical metadata.
    """
    import json

    import pyarrow as pa

    value_types = {"string": pa.string(), "bool": pa.bool_()}
    fields = []
    for column in SCHEMA:
        if not column.shape:
            fields.append(pa.field(column.name, value_types[column.dtype]))
            continue
        storage = pa.from_numpy_dtype(np.dtype(column.dtype))
        for _ in column.shape:
            storage = pa.list_(storage)
        extension = [
            (b"ARROW:extension:metadata", json.dumps([list(column.shape), column.dtype]).encode()),
            (b"ARROW:extension:name", f"datasets.features.features.{column.feature_type}ExtensionType".encode()),
        ]
        fields.append(pa.field(column.name, storage, metadata=pa.KeyValueMetadata(extension)))
    metadata = {b"huggingface": json.dumps({"info": {"features": feature_dicts()}}).encode()}
    return pa.schema(fields, metadata=metadata)


def shard_name(split: str, index: int, count: int) -> str:
    """Return the Hub file name of shard ``index`` of ``count``: ``{split}-00000-of-00004.parquet``."""
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def list_shards(dataset_dir: Path) -> dict[str, list[Path]]:
    """Return the shards with vaseg's own names (`shard_name`) under ``dataset_dir/data``, by split, sorted by index.

    This is what precompute wrote (and may replace); it is not how a dataset is read.
    Readers (validate, train, the Hub download) take the splits `datasets.load_dataset`
    sees, in any layout it accepts: `visionassist_seg.data.splits.resolve_local`.
    """
    shards: dict[str, list[Path]] = {}
    data_dir = Path(dataset_dir) / DATA_DIR
    if not data_dir.is_dir():
        return shards
    for path in sorted(data_dir.iterdir()):
        match = SHARD_PATTERN.match(path.name)
        if match:
            shards.setdefault(match["split"], []).append(path)
    return shards
