"""The units of a precompute run: the shards it plans, what each shard and the run produce."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from visionassist_seg.data.raw import RawSample
from visionassist_seg.data.schema import shard_name


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
