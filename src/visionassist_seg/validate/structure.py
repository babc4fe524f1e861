"""Dataset-level checks: which shards make up each split (as `datasets` resolves them), their parquet schema, and the manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from visionassist_seg.data.schema import ARRAY_DTYPES, ARRAY_SHAPES, COLUMNS, MANIFEST, SCHEMA, SPLITS, describe_columns, feature_dicts
from visionassist_seg.data.splits import SplitFiles, has_shard_counts, incomplete_shard_sets, resolve_local
from visionassist_seg.errors import VasegError
from visionassist_seg.validate.report import FAIL, LEGACY, PASS, CheckRow

CURRENT = "current"
LEGACY_FORMAT = "legacy"
LEGACY_COLUMNS = tuple(c for c in COLUMNS if c != "preprocessed")
SPLITS_CHECK = "structure: splits"
# The Arrow types each value column may have: pyarrow may store strings as large_string.
_VALUE_TYPES = {c.name: (c.dtype, "large_string") if c.dtype == "string" else (c.dtype,) for c in SCHEMA if not c.shape}


@dataclass(frozen=True)
class ShardInfo:
    """One parquet shard: its split, path relative to the dataset, rows per row group, and format."""

    split: str
    path: Path
    relative: str
    row_groups: tuple[int, ...]
    layout: str  # CURRENT, LEGACY_FORMAT, or "" when its schema failed
    schema_problem: str | None

    @property
    def rows(self) -> int:
        return sum(self.row_groups)


def _list_depth_and_leaf(arrow_type) -> tuple[int, str]:  # arrow_type: pyarrow.DataType
    """Return how many list levels wrap the leaf type, and the leaf type's numpy name (e.g. float32)."""
    import pyarrow as pa

    depth = 0
    if isinstance(arrow_type, pa.ExtensionType):
        arrow_type = arrow_type.storage_type
    while pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        arrow_type = arrow_type.value_type
        depth += 1
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type):
        return depth, arrow_type.to_pandas_dtype().__name__
    return depth, str(arrow_type)  # a non-numeric leaf (string, struct, ...): arrow's own name


def classify_schema(schema) -> tuple[str, str | None]:  # schema: pyarrow.Schema
    """Return (layout, problem) for a shard's schema: (CURRENT, None), (LEGACY_FORMAT, None) or ("", why)."""
    names = list(schema.names)
    missing = [name for name in LEGACY_COLUMNS if name not in names]
    if missing:
        return "", f"missing columns {missing} (has {names})"
    depths = {name: _list_depth_and_leaf(schema.field(name).type) for name in ARRAY_SHAPES}
    if "preprocessed" not in names and all(depth == 1 for depth, _ in depths.values()):
        extra = [name for name in names if name not in LEGACY_COLUMNS]
        return (LEGACY_FORMAT, None) if not extra else ("", f"legacy layout with unexpected columns {extra}")
    problems = []
    if sorted(names) != sorted(COLUMNS):
        problems.append(f"columns are {names}, expected {list(COLUMNS)}")
    for name, (depth, leaf) in depths.items():
        want_depth, want_leaf = len(ARRAY_SHAPES[name]), ARRAY_DTYPES[name].name
        if (depth, leaf) != (want_depth, want_leaf):
            problems.append(f"'{name}' is {depth}-level list of {leaf}, expected {want_depth}-level list of {want_leaf}")
    for name, allowed in _VALUE_TYPES.items():
        if name in names and str(schema.field(name).type) not in allowed:
            problems.append(f"'{name}' has type {schema.field(name).type}, expected {allowed[0]}")
    problems += _metadata_problems(schema)
    return (CURRENT, None) if not problems else ("", "; ".join(problems))


def _metadata_problems(schema) -> list[str]:  # schema: pyarrow.Schema
    """Return why the Hugging Face feature metadata differs from the expected features (empty if it matches)."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if raw is None:
        return ["no Hugging Face feature metadata (datasets would load nested lists, not Array2D/Array3D)"]
    try:
        stored = json.loads(raw)["info"]["features"]
    except (ValueError, KeyError, TypeError):
        return ["Hugging Face feature metadata is not readable JSON with info.features"]
    expected = feature_dicts()
    return [
        f"feature '{name}' is {stored.get(name)}, expected {want}"
        for name, want in expected.items()
        if stored.get(name) != want
    ]


def inspect_shards(dataset_dir: Path) -> tuple[list[ShardInfo], list[CheckRow]]:
    """Return every shard's layout and row groups, plus the structure row for the splits and their completeness.

    Splits are resolved as `datasets.load_dataset` resolves them (`data.splits`). The row
    fails when a split is missing or has 0 rows, a file is unreadable, or ``-of-N`` names
    show missing files; names without ``-of-N`` are checked for what they have (the
    manifest row checks the manifest's file list).
    """
    try:
        found = resolve_local(dataset_dir)
    except VasegError as err:
        return [], [CheckRow(SPLITS_CHECK, FAIL, err.message)]
    shards, problems = _read_footers(found)
    problems += _split_problems(found, shards)
    counts = ", ".join(
        f"{split}: {sum(s.rows for s in shards if s.split == split)} rows in {len(names)} shard(s)"
        for split, names in found.files.items()
    )
    summary = f"{counts} (splits from {found.source}; {_completeness_note(found, dataset_dir)})"
    if problems:
        return shards, [CheckRow(SPLITS_CHECK, FAIL, "; ".join(problems) + f" ({summary})")]
    return shards, [CheckRow(SPLITS_CHECK, PASS, summary)]


def _read_footers(found: SplitFiles) -> tuple[list[ShardInfo], list[str]]:
    """Return a ShardInfo per readable resolved file, and a problem per unreadable one."""
    import pyarrow.parquet as pq

    shards: list[ShardInfo] = []
    problems: list[str] = []
    for split, names in found.files.items():
        for relative, path in zip(names, found.paths(split)):
            try:
                parquet = pq.ParquetFile(path)
                row_groups = tuple(parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups))
                layout, problem = classify_schema(parquet.schema_arrow)
            except (OSError, ValueError) as err:
                problems.append(f"{relative} is not a readable parquet file ({err})")
                continue
            shards.append(ShardInfo(split, path, relative, row_groups, layout, problem))
    return shards, problems


def _split_problems(found: SplitFiles, shards: list[ShardInfo]) -> list[str]:
    """Return why the splits are not usable: a split missing or empty, or a sharded set incomplete."""
    problems = incomplete_shard_sets(found)
    for split in SPLITS:
        if not found.files.get(split):
            problems.append(
                f"split '{split}' is missing: no parquet files for it in {found.root} (splits from {found.source})"
            )
        elif _all_read_and_empty(split, found, shards):
            problems.append(f"split '{split}' has 0 rows: training and evaluation need rows in both splits")
    return problems


def _all_read_and_empty(split: str, found: SplitFiles, shards: list[ShardInfo]) -> bool:
    """Return True when every file of ``split`` was readable and together they hold no row."""
    read = [s for s in shards if s.split == split]
    return len(read) == len(found.files[split]) and not any(s.rows for s in read)


def _completeness_note(found: SplitFiles, dataset_dir: Path) -> str:
    """Return what the completeness check could rely on: -of-N names, the manifest, both or neither."""
    by_names = has_shard_counts(found)
    by_manifest = (Path(dataset_dir) / MANIFEST).is_file()
    if by_names:
        return "completeness checked by the -of-N names" + (f" and {MANIFEST}" if by_manifest else "")
    if by_manifest:
        return f"no -of-N names: completeness checked by {MANIFEST}"
    return f"no -of-N names and no {MANIFEST}: completeness cannot be checked"


def schema_row(shards: list[ShardInfo]) -> CheckRow:
    """Return the schema row: pass (current format), legacy, or fail naming each bad shard."""
    bad = [f"{s.relative}: {s.schema_problem}" for s in shards if not s.layout]
    layouts = {s.layout for s in shards if s.layout}
    if bad:
        return CheckRow("schema", FAIL, "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else ""))
    if not shards:
        return CheckRow("schema", FAIL, "no readable shards to check")
    if layouts == {LEGACY_FORMAT}:
        return CheckRow(
            "schema",
            LEGACY,
            "legacy format: flat list columns, no 'preprocessed' column, images without gamma/CLAHE. "
            "`vaseg train` converts it at load time; rerun `vaseg precompute` to publish the current format.",
        )
    if layouts == {CURRENT}:
        return CheckRow(
            "schema",
            PASS,
            f"columns {', '.join(COLUMNS)}; {describe_columns()} (HF Array2D/Array3D metadata)",
        )
    mixed = ", ".join(f"{s.relative}={s.layout}" for s in shards[:6])
    return CheckRow("schema", FAIL, f"shards mix the legacy and current formats ({mixed})")


@dataclass(frozen=True)
class ManifestPlan:
    """What the manifest says each shard should be: file -> (split, rows, sha256)."""

    expected: dict[str, tuple[str, int, str]]
    problems: list[str]


def read_manifest(dataset_dir: Path, shards: list[ShardInfo]) -> ManifestPlan | None:
    """Return the manifest's expectations checked against the shards on disk (None when there is no manifest).

    Row counts and file sets are compared here; sha256 digests are compared by the caller
    (hashing runs in parallel with the value scan).
    """
    path = Path(dataset_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        expected = {
            shard["file"]: (split, int(shard["rows"]), str(shard["sha256"]))
            for split, entry in manifest["splits"].items()
            for shard in entry["shards"]
        }
        split_rows = {split: int(entry["rows"]) for split, entry in manifest["splits"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        return ManifestPlan({}, [f"{path} is not a vaseg manifest ({type(err).__name__}: {err})"])
    problems = []
    on_disk = {s.relative: s for s in shards}
    for file, (split, rows, _) in sorted(expected.items()):
        shard = on_disk.get(file)
        if shard is None:
            problems.append(f"{file} is listed in {MANIFEST} but missing")
        elif shard.rows != rows:
            problems.append(f"{file} has {shard.rows} rows, {MANIFEST} says {rows}")
    problems += [f"{file} is not listed in {MANIFEST}" for file in sorted(set(on_disk) - set(expected))]
    for split, rows in sorted(split_rows.items()):
        actual = sum(s.rows for s in shards if s.split == split)
        if actual != rows:
            problems.append(f"split '{split}' has {actual} rows, {MANIFEST} says {rows}")
    return ManifestPlan(expected, problems)
