"""A core install (no `train` extra): the torch-free commands run, the others say how to install the extra.

Each test runs the CLI in a fresh interpreter whose import system cannot find torch or
matplotlib, as on a machine where they are not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np

from visionassist_seg.infer.evaluate import evaluate_model, split_index
from visionassist_seg.infer.models import load_segmenter

# Runs the given vaseg command lines with typer's runner and prints [exit code, output] per line as JSON.
_RUNNER = textwrap.dedent(
    """
    import importlib.machinery, json, sys

    BLOCKED = {"torch", "torchvision", "matplotlib"}

    class NoTrainExtra(importlib.machinery.PathFinder):
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                return None  # as if not installed: `import torch` raises ModuleNotFoundError
            return super().find_spec(name, path, target)

    sys.meta_path[:] = [NoTrainExtra if f is importlib.machinery.PathFinder else f for f in sys.meta_path]

    from typer.testing import CliRunner
    from visionassist_seg.cli.app import app

    results = []
    for args in json.loads(sys.argv[1]):
        result = CliRunner().invoke(app, args)
        trace = "".join(__import__("traceback").format_exception(result.exc_info[1])) if result.exception and not isinstance(result.exception, SystemExit) else ""
        results.append([result.exit_code, result.output + trace])
    results.append(sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED))
    print(json.dumps(results))
    """
)


def _run_without_torch(commands: list[list[str]], tmp_path: Path) -> tuple[list[tuple[int, str]], list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VASEG_"))}
    env.update(MODAL_CONFIG_PATH=str(tmp_path / "absent-modal.toml"), HF_HOME=str(tmp_path / "hf-home"), COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, json.dumps(commands)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )
    assert done.returncode == 0, done.stderr
    *results, imported = json.loads(done.stdout.splitlines()[-1])
    return [tuple(r) for r in results], imported


def test_core_commands_run_without_torch(trained_run, eval_dataset, tmp_path):
    raw, dataset = tmp_path / "raw", tmp_path / "dataset"
    image = tmp_path / "eye.png"
    cv2.imwrite(str(image), np.full((400, 640), 120, np.uint8))
    onnx = trained_run / "best.onnx"
    report = tmp_path / "report.json"
    commands = [
        ["--help"],
        *[[name, "--help"] for name in ("config", "download", "precompute", "fetch", "validate", "push", "train", "export", "demo", "evaluate", "predict")],
        ["config"],
        ["download", "--source", "synthetic", "--count", "4", "--raw-dir", str(raw)],
        ["precompute", "--no-push", "--skip-download", "--raw-dir", str(raw), "--output-dir", str(dataset), "--workers", "1"],
        ["validate", "--dataset", str(dataset), "--workers", "1"],
        ["evaluate", str(onnx), "--dataset", str(eval_dataset), "--json", str(report), "--batch-size", "3"],
        ["predict", str(onnx), str(image), "--output", str(tmp_path / "rows.jsonl")],
    ]
    results, imported = _run_without_torch(commands, tmp_path)
    for args, (code, output) in zip(commands, results):
        assert code == 0, f"vaseg {' '.join(args)}:\n{output}"
    assert imported == []
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 1
    # The torch-free evaluation equals the in-process one (which may use torch) on the same rows.
    expected = evaluate_model(load_segmenter(onnx), split_index(eval_dataset, "validation"), dataset=str(eval_dataset))
    written = json.loads(report.read_text())
    assert written["rows"] == len(expected.samples) == 4
    assert (written["pupil_iou"], written["miou"], written["challenge_score"]) == (
        expected.pupil_iou, expected.miou, expected.challenge_score
    )
    assert [s["iou"] for s in written["samples"]] == [s.iou for s in expected.samples]


def test_remote_and_hub_commands_reach_their_credential_checks_without_torch(trained_run, eval_dataset, tmp_path):
    commands = [
        ["train", "--remote", "--dataset", str(eval_dataset)],
        ["train", "--remote", "--resume", str(trained_run / "last.pt"), "--epochs", "9"],
        ["precompute", "--remote", "--no-push", "--source", "synthetic"],
        ["fetch", "some-run"],
        ["push", "--dataset", str(eval_dataset), "--hf-repo", "someone/dataset"],
    ]
    results, imported = _run_without_torch(commands, tmp_path)
    for args, (code, output) in zip(commands, results):
        assert code == 1, f"vaseg {' '.join(args)}:\n{output}"
        assert "torch" not in output and "Traceback" not in output, output
        assert ("No Hugging Face token" if args[0] == "push" else "modal setup") in output, output
    assert imported == []


def test_torch_commands_say_how_to_install_the_train_extra(trained_run, eval_dataset, tmp_path):
    checkpoint = trained_run / "best.pt"
    commands = [
        ["train", "--dataset", str(eval_dataset), "--output-dir", str(tmp_path / "run"), "--epochs", "1"],
        ["demo", "--dir", str(tmp_path / "demo")],
        ["export", str(checkpoint), "--output", str(tmp_path / "model.onnx")],
        ["evaluate", str(checkpoint), "--dataset", str(eval_dataset)],
        ["predict", str(checkpoint), str(tmp_path), "--output", str(tmp_path / "rows.jsonl")],
    ]
    results, _ = _run_without_torch(commands, tmp_path)
    for args, (code, output) in zip(commands, results):
        text = " ".join(output.split())
        assert code == 1, f"vaseg {' '.join(args)}:\n{output}"
        assert "Traceback" not in output, output
        assert "pip install 'visionassist-seg[train]'" in text, output
        assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text, output
    assert not (tmp_path / "run").exists() and not (tmp_path / "demo").exists() and not (tmp_path / "model.onnx").exists()
