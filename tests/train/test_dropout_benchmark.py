"""benchmarks/dropout.py runs end to end on a tiny input (its numbers are not checked). About 5 s.

It belongs beside the other benchmark runs in tests/test_benchmarks.py; it is here while
that file is being edited elsewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "dropout.py"

pytestmark = pytest.mark.slow


def test_dropout_benchmark_times_every_candidate(tmp_path):
    json_path = tmp_path / "dropout.json"
    subprocess.run(
        [sys.executable, str(BENCHMARK), "--sizes", "16x16x1", "--rounds", "1", "--steps", "1", "--warmup", "0", "--json", str(json_path)],
        check=True, timeout=600,
    )  # fmt: skip
    results = json.loads(json_path.read_text())["16x16x1"]
    assert {"nn.Dropout", "vaseg", "identity"} <= set(results)
    assert all(len(row["ms_per_step"]) == 1 and row["ms_per_step"][0] > 0 for row in results.values())
