"""The units of a precompute run: the shards it plans, the settings a worker reads, what each shard and the run produce."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from visionassist_seg.data.raw import RawSample
from visionassist_seg.data.schema import shard_name

if TYPE_CHECKING:  # pydantic settings take 0.17 s to import: worker processes do without
    from visionassist_seg.settings import Settings


@dataclass(frozen=True)
class ShardTask:
    """One output shard: the raw samples of ``split`` numbered [start, start + len(samples))."""

    split: str
    index: int
    count: int
    samples: tuple[RawSample, ...]

    @property
    def name(self) -> str:
        return shard_name(self.split, self.index, self.count)


@dataclass(frozen=True)
class ShardSettings:
    """The settings that writing a shard reads, for worker processes.

    A plain dataclass: a worker unpickles it without importing pydantic and the
    `Settings` model (0.17 s of each worker's start-up), and it holds no secrets.
    """

    raw_dir: Path
    output_dir: Path
    compression_level: int
    row_group_size: int

    @classmethod
    def of(cls, settings: Settings) -> ShardSettings:
        return cls(Path(settings.raw_dir), Path(settings.output_dir), settings.compression_level, settings.row_group_size)


@dataclass
class ShardResult:
    """What writing (or resuming) one shard produced."""

    split: str
    name: str
    rows: int
    sha256: str
    bytes: int
    fingerprint: str
    skipped: list[dict] = field(default_factory=list)
    resumed: bool = False


@dataclass
class PrecomputeReport:
    """The outcome of a precompute run."""

    output_dir: Path
    rows: dict[str, int]
    shards: dict[str, int]
    bytes: dict[str, int]
    skipped: list[dict]
    unlabeled_splits: list[str]
    resumed_shards: int
    seconds: float
    displaced: list[str] = field(default_factory=list)  # files --overwrite moved aside, never deleted
