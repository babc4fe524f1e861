"""Fixtures: a synthetic raw tree and tiny precomputed datasets (current and legacy) built from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from validate_fixtures import RAW_COUNT, raw_rows, write_dataset

from visionassist_seg.data.schema import SPLITS


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory) -> Path:
    """A synthetic raw OpenEDS tree (8 train, 2 validation labelled images)."""
    from visionassist_seg.data.synthetic import write_synthetic_raw

    raw = tmp_path_factory.mktemp("raw")
    write_synthetic_raw(raw, RAW_COUNT, seed=0)
    return raw


@pytest.fixture(scope="session")
def raw_root(raw_dir) -> Path:
    from visionassist_seg.data.raw import require_data_root

    return require_data_root(raw_dir)


@pytest.fixture(scope="session")
def clean_master(tmp_path_factory, raw_root) -> Path:
    rows = {split: raw_rows(raw_root, split) for split in SPLITS}
    return write_dataset(tmp_path_factory.mktemp("clean") / "dataset", rows)


@pytest.fixture(scope="session")
def legacy_master(tmp_path_factory, raw_root) -> Path:
    rows = {split: raw_rows(raw_root, split, legacy=True) for split in SPLITS}
    return write_dataset(tmp_path_factory.mktemp("legacy") / "dataset", rows, legacy=True)


@pytest.fixture
def dataset(clean_master, tmp_path) -> Path:
    """A fresh copy of the clean dataset, free to break."""
    return Path(shutil.copytree(clean_master, tmp_path / "dataset"))


@pytest.fixture
def legacy_dataset(legacy_master, tmp_path) -> Path:
    return Path(shutil.copytree(legacy_master, tmp_path / "legacy"))
