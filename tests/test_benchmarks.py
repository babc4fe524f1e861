"""The benchmark scripts run end to end on tiny inputs (their numbers are not checked: no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.slow


def _run(script: str, *args: str, json_path: Path) -> dict:
    subprocess.run([sys.executable, str(BENCHMARKS / script), *args, "--json", str(json_path)], check=True, timeout=600)
    return json.loads(json_path.read_text())


def test_loader_benchmark_reports_every_epoch_and_worker_count(tmp_path):
    results = _run(
        "loader.py", "--samples", "8", "--reference-samples", "2", "--batch-size", "2", "--workers", "0", "2",
        "--epochs", "2", json_path=tmp_path / "loader.json",
    )  # fmt: skip
    assert results["reference"] > 0
    for workers in (0, 2):
        rates = results[f"vaseg_workers_{workers}"]
        assert len(rates) == 2 and all(rate > 0 for rate in rates)


def test_train_step_benchmark_includes_the_loader_row(tmp_path):
    results = _run(
        "train_step.py", "--steps", "1", "--batch-size", "1", "--loader-samples", "4", "--loader-workers", "0",
        json_path=tmp_path / "step.json",
    )  # fmt: skip
    assert len(results["seconds_per_step"]) == 2 and results["loader_samples_per_s"] > 0


def test_precompute_benchmark_counts_rows_and_bytes(tmp_path):
    results = _run("precompute.py", "--samples", "8", "--rss-samples", "2", "--shard-size", "4", json_path=tmp_path / "pre.json")
    for name in ("reference (1 process)", "vaseg (1 worker)", "vaseg (2 workers)"):
        assert results[name]["rows"] == 10 and results[name]["bytes"] > 0
    assert results["peak_rss_mb"]["small"] > 0


def test_dropout_benchmark_times_every_candidate(tmp_path):
    results = _run(
        "dropout.py", "--sizes", "16x16x1", "--rounds", "1", "--steps", "1", "--warmup", "0", json_path=tmp_path / "dropout.json"
    )["16x16x1"]
    assert {"nn.Dropout", "vaseg", "identity"} <= set(results)
    assert all(len(row["ms_per_step"]) == 1 and row["ms_per_step"][0] > 0 for row in results.values())
