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
SHARD_PATTERN = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")


def dataset_features():  # -> datasets.Features (imported lazily: datasets is slow to import)
    """Return the Hugging Face `Features` of a precomputed dataset row."""
    import datasets

    array_types = {2: datasets.Array2D, 3: datasets.Array3D}
    features = {
        name: array_types[len(shape)](shape, ARRAY_DTYPES[name].name) for name, shape in ARRAY_SHAPES.items()
    }
    return datasets.Features({**features, "filename": datasets.Value("string"), "preprocessed": datasets.Value("bool")})


def shard_name(split: str, index: int, count: int) -> str:
    """Return the Hub file name of shard ``index`` of ``count``: ``{split}-00000-of-00004.parquet``."""
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def list_shards(dataset_dir: Path) -> dict[str, list[Path]]:
    """Return the parquet shards under ``dataset_dir/data`` grouped by split, sorted by index."""
    shards: dict[str, list[Path]] = {}
    data_dir = Path(dataset_dir) / DATA_DIR
    if not data_dir.is_dir():
        return shards
    for path in sorted(data_dir.iterdir()):
        match = SHARD_PATTERN.match(path.name)
        if match:
            shards.setdefault(match["split"], []).append(path)
    return shards
