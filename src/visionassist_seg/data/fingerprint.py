"""What determines a shard's bytes, hashed: the inputs' content, the preprocessing, the file settings.

A shard whose recorded fingerprint equals the one computed now is complete and current,
so a rerun reuses it. Input files are hashed by content (sha256), so a label fixed in
place (same size, even the same mtime) is noticed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from visionassist_seg import __version__
from visionassist_seg.data.raw import RawSample, display_name
from visionassist_seg.data.shards import COLUMN_ENCODINGS
from visionassist_seg.ops import intensity, labels

if TYPE_CHECKING:
    from visionassist_seg.data.plan import ShardTask
    from visionassist_seg.settings import Settings

PREPROCESSING = {
    "gamma": intensity.GAMMA,
    "clahe_clip_limit": intensity.CLAHE_CLIP_LIMIT,
    "clahe_tile_grid": list(intensity.CLAHE_TILE_GRID),
    "pupil_class": labels.PUPIL_CLASS,
    "edge_weight": labels.EDGE_WEIGHT,
    "canny_thresholds": [0, 3],
    "dilate_kernel": "(3, 3) as passed by RITnet: a 2x1 vertical kernel",
    "distance_normalisation": "sqrt((H-1)^2 + (W-1)^2)",
}


def task_fingerprint(task: ShardTask, settings: Settings, digests: list[tuple] | None = None) -> str:
    """Return a hash of everything that determines the shard's bytes, input file contents included.

    ``digests`` are the samples' `sample_digest` as read while writing the shard (what was
    actually processed); without them every input file is read and hashed now.
    """
    recipe = {
        "files": digests if digests is not None else [sample_digest(s) for s in task.samples],
        "preprocessing": PREPROCESSING,
        "compression_level": settings.dataset.compression_level,
        "row_group_size": settings.dataset.row_group_size,
        "encodings": COLUMN_ENCODINGS,  # a shard written with other encodings is rewritten, not resumed
        "version": __version__,
        "name": task.name,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def sample_digest(sample: RawSample, image_data: bytes | None = None, label_data: bytes | None = None) -> tuple:
    """Return (image name, sha256 of its content, label name, sha256 of its content) for one sample.

    Content is hashed from ``image_data``/``label_data`` when given (the bytes that were
    processed), else read from the files; a file that cannot be read hashes to None.
    """
    label_name = display_name(sample.label.name) if sample.label is not None else None
    return (display_name(sample.image.name), _content_sha256(sample.image, image_data), label_name, _content_sha256(sample.label, label_data))


def _content_sha256(path: Path | None, data: bytes | None) -> str | None:
    if data is not None:
        return hashlib.sha256(data).hexdigest()
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None
