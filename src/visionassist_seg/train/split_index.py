"""Where a dataset's training rows are: row slices of parquet shards, read from footers only.

`index_dataset` resolves a dataset folder's train and validation shards (the layouts
`datasets.load_dataset` accepts), refuses incomplete shard sets, and returns one
`SplitIndex` per split: the rows as slices of at most `MAX_SLICE_ROWS` rows of one row
group, which `train.rows` reads and `train.loader` serves as samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from visionassist_seg.data.schema import ARRAY_COLUMNS, MANIFEST, SPLITS
from visionassist_seg.data.splits import SplitFiles, incomplete_shard_sets, resolve_local
from visionassist_seg.errors import VasegError

# A row group larger than this is read in sub-slices (bounded memory, some re-decoding).
MAX_SLICE_ROWS = 64


@dataclass(frozen=True)
class RowSlice:
    """Rows ``start:stop`` of one row group of one shard."""

    path: str
    row_group: int
    start: int
    stop: int
    legacy: bool  # no `preprocessed` column: every row needs gamma + CLAHE at load time

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass
class SplitIndex:
    """Where the rows of one split are: a list of row slices in shard order."""

    split: str
    slices: list[RowSlice] = field(default_factory=list)
    legacy_shards: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.slices)


def index_split(split: str, paths: list[Path], limit: int | None = None) -> SplitIndex:
    """Return the row slices of ``paths`` (first ``limit`` rows if given), reading only parquet footers.

    Raises:
        VasegError: a shard is unreadable or lacks a required column.
    """
    import pyarrow.parquet as pq

    index = SplitIndex(split)
    remaining = limit if limit is not None else float("inf")
    for path in paths:
        if remaining <= 0:
            break
        try:
            meta = pq.ParquetFile(path)
        except (OSError, ValueError) as err:
            raise VasegError(f"Cannot read parquet shard {path}: {err}. Delete it and rerun `vaseg precompute`.") from None
        names = meta.schema_arrow.names
        missing = [c for c in ARRAY_COLUMNS if c not in names]
        if missing:
            raise VasegError(
                f"Shard {path} lacks column(s) {', '.join(missing)}; it is not a vaseg/OpenEDS training dataset. "
                "Point --dataset at a `vaseg precompute` output folder."
            )
        legacy = "preprocessed" not in names
        if legacy:
            index.legacy_shards.append(str(path))
        for group in range(meta.metadata.num_row_groups):
            group_rows = meta.metadata.row_group(group).num_rows
            for start in range(0, group_rows, MAX_SLICE_ROWS):
                stop = int(min(group_rows, start + MAX_SLICE_ROWS, start + remaining))
                if stop <= start:
                    break
                index.slices.append(RowSlice(str(path), group, start, stop, legacy))
                remaining -= stop - start
    return index


def index_dataset(dataset_dir: Path, limit: int | None = None) -> dict[str, SplitIndex]:
    """Return the train and validation indexes of a precomputed (or legacy) dataset folder.

    The splits are the ones `datasets.load_dataset(dataset_dir)` sees (the card's
    ``configs:``, else its default patterns such as ``data/{split}-*`` or ``data/{split}/*``).

    Raises:
        VasegError: a split is missing or has no rows, or the shard set is incomplete
            (``-of-N`` names or the manifest list files that are not there).
    """
    dataset_dir = Path(dataset_dir)
    found = resolve_local(dataset_dir)
    for split in SPLITS:
        if not found.files.get(split):
            raise VasegError(
                f"No {split} shards in {dataset_dir} (splits found: {', '.join(found.files) or 'none'}; resolved "
                f"from {found.source}). Pass --dataset a folder `datasets.load_dataset` reads as train and "
                "validation splits (e.g. `vaseg precompute` output: data/train-*.parquet, data/validation-*.parquet) "
                "or --hf-repo a Hub dataset."
            )
    missing = incomplete_shard_sets(found) + _check_manifest(dataset_dir, found)
    if missing:
        raise VasegError(
            f"The dataset in {dataset_dir} is incomplete: {'; '.join(missing)}. Training on what is left would "
            "silently use less data: restore the missing files (download the dataset again, or rerun "
            "`vaseg precompute` into an empty folder)."
        )
    indexes = {split: index_split(split, found.paths(split), limit) for split in SPLITS}
    for split, index in indexes.items():
        if index.rows == 0:
            raise VasegError(
                f"The {split} split of {dataset_dir} has 0 rows ({len(found.files[split])} shard(s)). Training "
                "needs rows in both train and validation: rerun `vaseg precompute`, or check the raw "
                f"{split} folder has labelled images."
            )
    return indexes


def _check_manifest(dataset_dir: Path, found: SplitFiles) -> list[str]:
    """Return one sentence per shard the manifest lists that is not part of its resolved split ([] without a manifest).

    Raises:
        VasegError: the manifest is unreadable or not a vaseg manifest.
    """
    path = dataset_dir / MANIFEST
    if not path.is_file():
        return []
    try:
        manifest = json.loads(path.read_text())
        listed = [(split, str(shard["file"])) for split, entry in manifest["splits"].items() for shard in entry["shards"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise VasegError(f"Cannot read {path} ({type(err).__name__}: {err}). Fix or delete the manifest and rerun.") from None
    if manifest.get("format") not in (None, "vaseg-precomputed"):
        raise VasegError(f"{path} has format {manifest.get('format')!r}, expected 'vaseg-precomputed'.")
    problems = []
    for split, file in listed:
        if file in found.files.get(split, ()):
            continue
        where = "is missing" if not (dataset_dir / file).is_file() else f"is not part of split '{split}' ({found.source})"
        problems.append(f"{MANIFEST} lists {file}, which {where}")
    return problems
