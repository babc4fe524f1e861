"""The dataset card (README.md) of a precomputed dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path

from visionassist_seg.data.schema import CARD

_SCHEMA_TABLE = """| column | type | content |
|---|---|---|
| image | uint8 [400, 640] (`Array2D`) | IR eye image, gamma 0.8 then CLAHE (clip 1.5, 8x8 tiles) |
| label | uint8 [400, 640] (`Array2D`) | 0 background, 1 pupil |
| spatial_weights | float32 [400, 640] (`Array2D`) | 20 on a band around the pupil boundary, 0 elsewhere |
| dist_map | float32 [2, 400, 640] (`Array3D`) | signed distance to each class (0 background, 1 pupil), divided by the image diagonal |
| filename | string | file stem of the raw OpenEDS image |
| preprocessed | bool | True: gamma and CLAHE already applied (do not apply again) |"""


def card_text(manifest: dict) -> str:
    """Return the README.md dataset card for ``manifest`` (YAML header + markdown body)."""
    splits = manifest["splits"]
    header = "\n".join(
        [
            "---",
            "license: other",
            "task_categories:",
            "- image-segmentation",
            "tags:",
            "- openeds",
            "- eye-tracking",
            "- pupil-segmentation",
            "configs:",
            "- config_name: default",
            "  data_files:",
            *[f"  - split: {split}\n    path: data/{split}-*" for split in splits],
            "---",
        ]
    )
    counts = "\n".join(
        f"| {split} | {info['rows']} | {len(info['shards'])} |" for split, info in splits.items()
    )
    skipped = manifest.get("skipped", [])
    parameters = json.dumps(manifest.get("parameters", {}), indent=2)
    versions = ", ".join(f"{k} {v}" for k, v in manifest.get("library_versions", {}).items())
    return f"""{header}

# OpenEDS pupil segmentation, precomputed

Pupil-segmentation training data for ShallowNet, made from the OpenEDS eye dataset by
[vaseg](https://pypi.org/project/visionassist-seg/) {manifest['package_version']}. Every row is ready to
train on: the image is already gamma- and CLAHE-corrected, and the spatial weights and
signed distance maps for the boundary-aware losses are included.

Source: `{manifest.get('source')}`. Command: `{manifest.get('command')}`.
Libraries: {versions}.

## Splits

| split | rows | shards |
|---|---|---|
{counts}

Samples skipped as bad input: {len(skipped)} (listed in `manifest.json`).

## Schema

{_SCHEMA_TABLE}

## Preprocessing parameters

```json
{parameters}
```

## Use

```python
from datasets import load_dataset

ds = load_dataset("<this repository>").with_format("numpy")
```

`manifest.json` (local copies) lists every shard with its row count and sha256;
`vaseg validate` checks the schema, values and recomputation.
"""


def write_card(output_dir: Path, manifest: dict) -> Path:
    """Write the card to ``output_dir/README.md`` atomically; return its path."""
    path = Path(output_dir) / CARD
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(card_text(manifest))
    os.replace(tmp, path)
    return path
