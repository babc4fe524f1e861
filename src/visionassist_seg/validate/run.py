"""`validate_dataset`: every check of a precomputed dataset, in bounded memory and in parallel."""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionassist_seg.data.schema import MANIFEST, SPLITS
from visionassist_seg.errors import VasegError
from visionassist_seg.validate.report import INFO, SKIP, WARN, CheckRow, Failure, ValidationReport, failure_row
from visionassist_seg.validate.scan import (
    RECOMPUTE,
    SCHEMA,
    VALUE_CHECKS,
    HashTask,
    RecomputeTask,
    ScanResult,
    ScanTask,
    Tracker,
    run_parallel,
)
from visionassist_seg.validate.stats import SplitStatistics, describe
from visionassist_seg.validate.structure import (
    LEGACY_FORMAT,
    ManifestPlan,
    ShardInfo,
    inspect_shards,
    read_manifest,
    schema_row,
)

UNIQUE = "values: filenames unique"
DISJOINT = "values: splits disjoint"
_VALUE_DETAILS = {
    "values: label": "every label pixel is 0 or 1",
    "values: spatial_weights": "weights are 0 or 20 and non-zero only within 2 px of the label boundary",
    "values: dist_map": "|value| <= 1; pupil channel <= 0 exactly on pupil pixels (all zero without a pupil)",
    "values: image": "no constant image",
}


@dataclass
class _Collected:
    """Results gathered from the workers, merged in the main process."""

    digests: dict[str, str] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    filenames: dict[str, dict[int, list[str]]] = field(default_factory=lambda: defaultdict(dict))
    digests_by_split: dict[str, dict[int, list[bytes]]] = field(default_factory=lambda: defaultdict(dict))
    statistics: dict[str, SplitStatistics] = field(default_factory=lambda: defaultdict(SplitStatistics))

    def add(self, result: object) -> None:
        if isinstance(result, tuple):
            relative, digest = result
            self.digests[relative] = digest
        elif isinstance(result, ScanResult):
            self.failures += result.failures
            self.filenames[result.split][result.row_offset] = result.filenames
            self.digests_by_split[result.split][result.row_offset] = result.image_digests
            self.statistics[result.split].merge(result.statistics)
        else:
            self.failures += result

    def split_filenames(self, split: str) -> list[str]:
        """Return the split's filenames in row order."""
        chunks = self.filenames.get(split, {})
        return [name for offset in sorted(chunks) for name in chunks[offset]]

    def split_digests(self, split: str) -> list[bytes]:
        """Return the split's image digests in row order."""
        chunks = self.digests_by_split.get(split, {})
        return [digest for offset in sorted(chunks) for digest in chunks[offset]]


def validate_dataset(
    dataset_dir: Path | None = None,
    hf_repo: str | None = None,
    revision: str | None = None,
    raw_dir: Path | None = None,
    samples: int = 32,
    all_rows: bool = False,
    seed: int = 0,
    workers: int = 1,
    track: Tracker | None = None,
) -> ValidationReport:
    """Return the report of every check on a local dataset folder or a Hub dataset.

    Structure, schema, values and statistics always run; recomputation from the raw
    files runs when ``raw_dir`` is given (``samples`` seeded random rows, or all rows).
    ``track`` is told of each step's tasks as they finish (a progress bar).

    Raises:
        VasegError: exit code 2 for a wrong target (none, both, missing folder, bad sample
            count); exit code 1 when the Hub dataset or the raw folder cannot be reached.
    """
    if (dataset_dir is None) == (hf_repo is None):
        raise VasegError("Give exactly one dataset to validate: --dataset DIR or --hf-repo ID.", exit_code=2)
    if samples < 1:
        raise VasegError(f"--samples must be at least 1, got {samples}.", exit_code=2)
    raw_root = _raw_root(raw_dir)
    if hf_repo is not None:
        from visionassist_seg.hub import download_dataset

        folder = download_dataset(hf_repo, revision)
        target = f"hf://datasets/{hf_repo}" + (f"@{revision}" if revision else "")
    else:
        folder = Path(dataset_dir)
        if not folder.is_dir():
            raise VasegError(
                f"Dataset folder {folder} does not exist. Pass --dataset the folder `vaseg precompute --dataset DIR` wrote.",
                exit_code=2,
            )
        target = str(folder)
    return _validate_folder(folder, target, hf_repo is None, raw_root, samples, all_rows, seed, workers, track)


def _raw_root(raw_dir: Path | None) -> Path | None:
    if raw_dir is None:
        return None
    from visionassist_seg.data.raw import require_data_root

    return require_data_root(raw_dir)


def _validate_folder(
    folder: Path,
    target: str,
    local: bool,
    raw_root: Path | None,
    samples: int,
    all_rows: bool,
    seed: int,
    workers: int,
    track: Tracker | None,
) -> ValidationReport:
    shards, structure_rows = inspect_shards(folder)
    report = ValidationReport(target, list(structure_rows))
    manifest = read_manifest(folder, shards)
    scans = _scan_tasks(shards)
    hashes = [HashTask(s.relative, s.path) for s in shards if manifest and s.relative in manifest.expected]
    collected = _Collected()
    run_parallel([*hashes, *scans], collected.add, workers=workers, track=track, description="validating")
    report.rows.append(_manifest_row(manifest, collected.digests, local))
    report.rows += _schema_and_value_rows(shards, scans, collected)
    if scans:
        report.rows += _filename_rows(collected)
    else:
        report.rows += [CheckRow(check, SKIP, "no readable shard to scan") for check in (UNIQUE, DISJOINT)]
    if raw_root is None:
        report.rows.append(CheckRow(RECOMPUTE, SKIP, "pass --raw-dir to recompute rows from the raw files"))
    else:
        report.rows.append(_recompute(scans, collected, raw_root, samples, all_rows, seed, workers, track))
    for split in sorted(collected.statistics, key=_split_order):
        summary = collected.statistics[split].summary()
        report.statistics[split] = summary
        report.rows.append(CheckRow(f"statistics: {split}", INFO, describe(summary)))
    return report


def _split_order(split: str) -> tuple[int, str]:
    return (SPLITS.index(split) if split in SPLITS else len(SPLITS), split)


def _failure_order(failure: Failure) -> tuple[tuple[int, str], int]:
    return (_split_order(failure.split), -1 if failure.row is None else failure.row)


def _scan_tasks(shards: list[ShardInfo]) -> list[ScanTask]:
    """Return one ScanTask per row group of every readable shard, with split-wide row offsets."""
    tasks: list[ScanTask] = []
    offsets: dict[str, int] = defaultdict(int)
    for shard in shards:
        for index, rows in enumerate(shard.row_groups):
            if shard.layout:
                legacy = shard.layout == LEGACY_FORMAT
                tasks.append(ScanTask(shard.split, shard.path, index, offsets[shard.split], legacy))
            offsets[shard.split] += rows
    return tasks


def _manifest_row(manifest: ManifestPlan | None, digests: dict[str, str], local: bool) -> CheckRow:
    check = "structure: manifest"
    if manifest is None:
        if local:
            return CheckRow(check, WARN, f"no {MANIFEST}: row counts and checksums not verified")
        return CheckRow(check, SKIP, f"no {MANIFEST} in the Hub repository (datasets pushed by older vaseg or other tools have none): row counts and checksums not verified")
    problems = list(manifest.problems)
    for relative, digest in sorted(digests.items()):
        want = manifest.expected[relative][2]
        if digest != want:
            problems.append(f"{relative} sha256 is {digest[:12]}..., {MANIFEST} says {want[:12]}...")
    failures = [Failure(check, "dataset", None, None, problem) for problem in problems]
    return failure_row(check, failures, f"{len(digests)} shards match {MANIFEST} (rows and sha256)")


def _schema_and_value_rows(shards: list[ShardInfo], scans: list[ScanTask], collected: _Collected) -> list[CheckRow]:
    schema = schema_row(shards)
    per_check: dict[str, list[Failure]] = defaultdict(list)
    for failure in sorted(collected.failures, key=_failure_order):
        per_check[failure.check].append(failure)
    if per_check[SCHEMA]:
        schema = failure_row(SCHEMA, per_check[SCHEMA], "")
    rows = [schema]
    for check in VALUE_CHECKS:
        if not scans:
            rows.append(CheckRow(check, SKIP, "no readable shard to scan"))
        else:
            rows.append(failure_row(check, per_check[check], _VALUE_DETAILS[check]))
    return rows


def _filename_rows(collected: _Collected) -> list[CheckRow]:
    """Return the rows for unique filenames within each split and no image in two splits."""
    duplicates: list[Failure] = []
    first_named: dict[str, tuple[str, int]] = {}
    for split in sorted(collected.filenames, key=_split_order):
        seen: dict[str, int] = {}
        for row, name in enumerate(collected.split_filenames(split)):
            if name in seen:
                duplicates.append(Failure(UNIQUE, split, row, name, f"duplicate of {split} row {seen[name]}"))
                continue
            seen[name] = row
            first_named.setdefault(name, (split, row))
    return [failure_row(UNIQUE, duplicates, f"{len(first_named)} distinct filenames"), _disjoint_row(collected)]


def _disjoint_row(collected: _Collected) -> CheckRow:
    """Return the row for no image (by content digest) in two splits; names reused for other images are noted."""
    overlaps: list[Failure] = []
    first_seen: dict[bytes, tuple[str, int, str]] = {}
    names_by_split: dict[str, set[str]] = {}
    for split in sorted(collected.filenames, key=_split_order):
        names = collected.split_filenames(split)
        names_by_split[split] = set(names)
        for row, (name, digest) in enumerate(zip(names, collected.split_digests(split))):
            other = first_seen.get(digest)
            if other is None:
                first_seen[digest] = (split, row, name)
            elif other[0] != split:
                message = f"same image as {other[0]} row {other[1]} ({other[2]})"
                overlaps.append(Failure(DISJOINT, split, row, name, message))
    details = f"no image appears in two splits (compared by a hash of its pixels){_reused_names_note(names_by_split)}"
    return failure_row(DISJOINT, overlaps, details)


def _reused_names_note(names_by_split: dict[str, set[str]]) -> str:
    """Return a note on filenames that several splits use for different images ('' when none)."""
    counts: dict[str, int] = defaultdict(int)
    for names in names_by_split.values():
        for name in names:
            counts[name] += 1
    shared = sorted(name for name, count in counts.items() if count > 1)
    if not shared:
        return ""
    shown = ", ".join(shared[:3]) + (", ..." if len(shared) > 3 else "")
    return (
        f"; {len(shared)} filename(s) ({shown}) appear in more than one split with different images: fine, "
        "splits numbered from zero reuse names"
    )


def _recompute(
    scans: list[ScanTask],
    collected: _Collected,
    raw_root: Path,
    samples: int,
    all_rows: bool,
    seed: int,
    workers: int,
    track: Tracker | None,
) -> CheckRow:
    """Return the recompute row after comparing chosen rows with their recomputation from ``raw_root``."""
    population = [(split, row) for split in sorted(collected.filenames, key=_split_order)
                  for row in range(len(collected.split_filenames(split)))]
    if not population:
        return CheckRow(RECOMPUTE, SKIP, "no rows to recompute")
    if all_rows or samples >= len(population):
        chosen = population
    else:
        picks = np.random.default_rng(seed).choice(len(population), size=samples, replace=False)
        chosen = [population[i] for i in sorted(picks.tolist())]
    tasks = _recompute_tasks(scans, chosen, raw_root)
    failures: list[Failure] = []
    run_parallel(tasks, failures.extend, workers=workers, track=track, description="recomputing")
    failures.sort(key=_failure_order)
    how = "all rows" if len(chosen) == len(population) else f"{len(chosen)} random rows (seed {seed})"
    return failure_row(
        RECOMPUTE,
        failures,
        f"{how} recomputed from {raw_root}: image, label, spatial_weights exact; dist_map within 1e-6",
    )


def _recompute_tasks(scans: list[ScanTask], chosen: list[tuple[str, int]], raw_root: Path) -> list[RecomputeTask]:
    """Group the chosen (split, row) pairs by the row group that holds them."""
    by_split: dict[str, list[ScanTask]] = defaultdict(list)
    for task in scans:
        by_split[task.split].append(task)
    for tasks in by_split.values():
        tasks.sort(key=lambda t: t.row_offset)
    offsets = {split: [t.row_offset for t in tasks] for split, tasks in by_split.items()}
    grouped: dict[ScanTask, list[int]] = defaultdict(list)
    for split, row in chosen:
        task = by_split[split][bisect.bisect_right(offsets[split], row) - 1]
        grouped[task].append(row - task.row_offset)
    return [
        RecomputeTask(t.split, t.path, t.row_group, t.row_offset, tuple(rows), raw_root, t.legacy)
        for t, rows in grouped.items()
    ]
