"""The inference benchmarks run end to end on tiny inputs (numbers are not checked: no timing assertions)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

pytestmark = pytest.mark.slow


def test_predict_benchmark_reports_every_pipeline_and_stage(tmp_path):
    out = tmp_path / "predict.json"
    subprocess.run([sys.executable, str(BENCHMARKS / "predict.py"), "--frames", "2", "--batch-size", "2", "--json", str(out)], check=True, timeout=900)
    results = json.loads(out.read_text())
    assert len(results) == 4
    for result in results.values():
        assert result["frames_per_s"] > 0 and set(result["ms_per_frame"]) == {"read", "preprocess", "inference", "fit", "write"}


def test_accuracy_benchmark_on_a_trained_run(trained_run, eval_dataset, tmp_path):
    out = tmp_path / "accuracy.json"
    args = ["--run", str(trained_run), "--dataset", str(eval_dataset), "--frames", "4", "--json", str(out)]
    subprocess.run([sys.executable, str(BENCHMARKS / "accuracy.py"), *args], check=True, timeout=900)
    results = json.loads(out.read_text())
    assert {"vaseg (best.onnx)", "classical dark blob", "agreement"} <= set(results)
    assert results["agreement"]["best.pt"] == pytest.approx(results["agreement"]["logged_best"], abs=1e-6)
