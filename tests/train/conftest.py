"""Fixtures for the training tests (helpers live in train_fixtures.py, importable by name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_fixtures import write_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A dataset of 8 train and 4 validation rows in row groups of 4."""
    return write_dataset(tmp_path_factory.mktemp("tiny") / "dataset")


@pytest.fixture(scope="session")
def shard_dataset(tmp_path_factory) -> Path:
    """The tiny dataset written by precompute's own shard writer (one data page per row)."""
    return write_dataset(tmp_path_factory.mktemp("shards") / "dataset", shard_writer=True)


@pytest.fixture(scope="session")
def legacy_dataset(tmp_path_factory) -> Path:
    """The same kind of data in the legacy form: flat int64/float64 lists, raw images, no `preprocessed`."""
    return write_dataset(tmp_path_factory.mktemp("legacy") / "dataset", train=4, validation=4, legacy=True)

