"""The precomputed dataset's schema and layout (REFERENCE.md section 3)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from visionassist_seg.ops.sample import HEIGHT, WIDTH

SPLITS = ("train", "validation")
COLUMNS = ("image", "label", "spatial_weights", "dist_map", "filename", "preprocessed")
DATA_DIR = "data"
MANIFEST = "manifest.json"
CARD = "README.md"
# The array columns: one place for their shapes and dtypes (features, writer, readers).
ARRAY_SHAPES: dict[str, tuple[int, ...]] = {
    "image": (HEIGHT, WIDTH),
    "label": (HEIGHT, WIDTH),
    "spatial_weights": (HEIGHT, WIDTH),
    "dist_map": (2, HEIGHT, WIDTH),
}
ARRAY_DTYPES: dict[str, np.dtype] = {
    "image": np.dtype(np.uint8),
    "label": np.dtype(np.uint8),
    "spatial_weights": np.dtype(np.float32),
    "dist_map": np.dtype(np.float32),
}
# vaseg's own shard names, as precompute writes them (readers resolve splits with data.splits).
SHARD_PATTERN = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")


def dataset_features():  # -> datasets.Features (imported lazily: datasets is slow to import)
    """Return the Hugging Face `Features` of a precomputed dataset row."""
    import datasets

    array_types = {2: datasets.Array2D, 3: datasets.Array3D}
    features = {
        name: array_types[len(shape)](shape, ARRAY_DTYPES[name].name) for name, shape in ARRAY_SHAPES.items()
    }
    return datasets.Features({**features, "filename": datasets.Value("string"), "preprocessed": datasets.Value("bool")})


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

    fields, features = [], {}
    for name, shape in ARRAY_SHAPES.items():
        dtype = ARRAY_DTYPES[name].name
        kind = f"Array{len(shape)}D"
        storage = pa.from_numpy_dtype(ARRAY_DTYPES[name])
        for _ in shape:
            storage = pa.list_(storage)
        extension = [
            (b"ARROW:extension:metadata", json.dumps([list(shape), dtype]).encode()),
            (b"ARROW:extension:name", f"datasets.features.features.{kind}ExtensionType".encode()),
        ]
        fields.append(pa.field(name, storage, metadata=pa.KeyValueMetadata(extension)))
        features[name] = {"shape": list(shape), "dtype": dtype, "_type": kind}
    fields += [pa.field("filename", pa.string()), pa.field("preprocessed", pa.bool_())]
    features.update(filename={"dtype": "string", "_type": "Value"}, preprocessed={"dtype": "bool", "_type": "Value"})
    return pa.schema(fields, metadata={b"huggingface": json.dumps({"info": {"features": features}}).encode()})


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
