"""The dataset's ``manifest.json``: counts, per-shard checksums, settings, skipped samples, versions."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from visionassist_seg import __version__
from visionassist_seg.data.fingerprint import PREPROCESSING
from visionassist_seg.data.raw import display_name
from visionassist_seg.data.schema import DATA_DIR

from visionassist_seg.data.plan import PrecomputeReport, ShardResult

if TYPE_CHECKING:
    from visionassist_seg.settings import Settings


def build_manifest(settings: Settings, by_split: dict[str, list[ShardResult]], report: PrecomputeReport) -> dict:
    """Return the manifest: counts, per-shard rows and sha256, settings and skipped samples."""
    return {
        "format": "vaseg-precomputed",
        "version": 1,
        "package_version": __version__,
        # display_name: arguments may hold file-name bytes that are not UTF-8, which the card cannot store
        "command": display_name(shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])) if sys.argv else None,
        "source": display_name(settings.raw.kaggle_dataset) if settings.raw.source == "kaggle" else "synthetic",
        "splits": {
            split: {
                "rows": report.rows[split],
                "shards": [
                    {"file": f"{DATA_DIR}/{r.name}", "rows": r.rows, "sha256": r.sha256, "bytes": r.bytes}
                    for r in results
                ],
            }
            for split, results in by_split.items()
        },
        "skipped": report.skipped,
        "unlabeled_splits": report.unlabeled_splits,
        "parameters": PREPROCESSING,
        "settings": {  # what shaped the data, by the settings' names (no paths, no credentials)
            "seed": settings.seed,
            "raw": settings.raw.model_dump(mode="json", include={"source", "kaggle_dataset", "synthetic_count"}),
            "dataset": settings.dataset.model_dump(mode="json", include={"limit", "shard_size", "row_group_size", "compression_level"}),
            "hub": {"repo": settings.hub.repo},
        },
        "library_versions": _library_versions(),
    }


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("numpy", "scipy", "opencv-python-headless", "pyarrow", "datasets"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions
