"""The CLI tests use the fixture modules of tests/train and tests/infer (plain modules, imported by name)."""

from __future__ import annotations

import sys
from pathlib import Path

for _folder in ("train", "infer"):
    _path = str(Path(__file__).parents[1] / _folder)
    if _path not in sys.path:
        sys.path.insert(0, _path)
