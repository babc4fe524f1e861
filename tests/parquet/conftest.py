"""Fixtures for the parquet format tests: the shards they decode come from train_fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

# train_fixtures writes shards in every layout the loader meets; whichever folder runs first.
sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
