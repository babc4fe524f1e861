"""The dataset card (README.md) of a precomputed dataset."""

from __future__ import annotations

import json
from pathlib import Path

from visionassist_seg.atomic_write import write_text_atomic
from visionassist_seg.data.schema import CARD, SCHEMA


def schema_table() -> str:
    """Return the card's markdown table of the columns, from `schema.SCHEMA`."""
    rows = ["| column | type | content |", "|---|---|---|"]
    for column in SCHEMA:
        kind = f"{column.type_text} (`{column.feature_type}`)" if column.shape else column.type_text
        rows.append(f"| {column.name} | {kind} | {column.description} |")
    return "\n".join(rows)


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

{schema_table()}

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
    write_text_atomic(path, card_text(manifest))
    return path
