"""Fixtures for the data layer: a small synthetic raw tree and helpers to precompute it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from visionassist_seg.settings import Settings

RAW_COUNT = 8  # train samples; validation and test get 2 each


@pytest.fixture(scope="session")
def raw_master(tmp_path_factory) -> Path:
    from visionassist_seg.data.synthetic import write_synthetic_raw

    raw = tmp_path_factory.mktemp("raw_master")
    write_synthetic_raw(raw, RAW_COUNT, seed=0)
    return raw


@pytest.fixture
def raw_dir(raw_master, tmp_path) -> Path:
    """A private copy of the synthetic raw tree, free to break."""
    return Path(shutil.copytree(raw_master, tmp_path / "raw"))


@pytest.fixture
def make_settings(tmp_path):
    def build(raw_dir: Path, output_dir: Path | None = None, *, workers: int = 1, synthetic_count: int = 64, **dataset) -> Settings:
        """Settings reading ``raw_dir``, writing ``output_dir``; ``dataset`` are [dataset] settings (shard_size=2)."""
        return Settings(
            workers=workers,
            raw={"dir": raw_dir, "source": "synthetic", "synthetic_count": synthetic_count},
            dataset={"dir": output_dir or tmp_path / "out", **dataset},
        )

    return build
