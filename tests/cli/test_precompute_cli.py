"""`vaseg precompute` through the CLI."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
from typer.testing import CliRunner

from visionassist_seg.cli.app import app

runner = CliRunner()


def _raw(tmp_path):
    result = runner.invoke(app, ["download", "--source", "synthetic", "--count", "4", "--raw-dir", str(tmp_path / "raw")])
    assert result.exit_code == 0, result.output
    return tmp_path / "raw"


def test_precompute_cli_no_push_writes_dataset_and_summary(tmp_path):
    raw = _raw(tmp_path)
    out = tmp_path / "ds"
    with mock.patch("visionassist_seg.hub.push_dataset") as push:
        result = runner.invoke(
            app, ["precompute", "--skip-download", "--no-push", "--raw-dir", str(raw), "--output-dir", str(out), "--workers", "1"]
        )
    assert result.exit_code == 0, result.output
    push.assert_not_called()
    assert "train" in result.output and "samples/s" in result.output and "no labels" in result.output
    assert json.loads((out / "manifest.json").read_text())["splits"]["train"]["rows"] == 4


def test_precompute_cli_pushes_with_the_push_code_unless_no_push(tmp_path):
    raw = _raw(tmp_path)
    out = tmp_path / "ds"
    with mock.patch("visionassist_seg.hub.push_dataset", return_value="https://huggingface.co/datasets/me/eyes") as push:
        result = runner.invoke(
            app,
            ["precompute", "--skip-download", "--raw-dir", str(raw), "--output-dir", str(out), "--hf-repo", "me/eyes", "--workers", "1"],
        )
    assert result.exit_code == 0, result.output
    (dataset_dir, settings), _ = push.call_args
    assert dataset_dir == out and settings.hf_repo == "me/eyes"
    assert "https://huggingface.co/datasets/me/eyes" in result.output


def test_precompute_cli_strict_exits_1_on_a_skipped_sample(tmp_path):
    raw = _raw(tmp_path)
    label = sorted((raw / "openEDS" / "openEDS" / "train" / "labels").glob("*.npy"))[0]
    np.save(label, np.zeros((10, 10), np.uint8))
    args = ["precompute", "--skip-download", "--no-push", "--raw-dir", str(raw), "--output-dir", str(tmp_path / "ds"), "--workers", "1"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, [*args, "--strict"])
    assert result.exit_code == 1
    assert "skipped as bad input" in result.output and label.stem in result.output
    assert "Traceback" not in result.output


def test_precompute_cli_missing_raw_dir_is_exit_1_with_fix(tmp_path):
    result = runner.invoke(
        app, ["precompute", "--skip-download", "--no-push", "--raw-dir", str(tmp_path / "nope"), "--output-dir", str(tmp_path / "ds")]
    )
    assert result.exit_code == 1
    assert "does not exist" in result.output and "vaseg download" in result.output


def test_precompute_cli_bad_option_value_is_usage_error(tmp_path):
    result = runner.invoke(app, ["precompute", "--workers", "0"])
    assert result.exit_code == 2


def test_precompute_cli_validate_alias_checks_output_dir(tmp_path):
    raw = _raw(tmp_path)
    out = tmp_path / "ds"
    base = ["precompute", "--skip-download", "--no-push", "--raw-dir", str(raw), "--output-dir", str(out), "--workers", "1"]
    assert runner.invoke(app, base).exit_code == 0
    result = runner.invoke(app, [*base, "--validate"])
    assert result.exit_code == 0, result.output
    assert "schema" in result.output.lower()


def test_precompute_cli_remote_dispatches_to_modal_code(tmp_path):
    from visionassist_seg.data.precompute import PrecomputeReport

    report = PrecomputeReport(tmp_path, {"train": 3, "validation": 1}, {"train": 1, "validation": 1}, {"train": 10, "validation": 5}, [], [], 0, 1.0)
    with mock.patch("visionassist_seg.remote.precompute_remote", return_value=report) as remote:
        result = runner.invoke(app, ["precompute", "--remote", "--no-push", "--workers", "4", "--source", "synthetic"])
    assert result.exit_code == 0, result.output
    (settings,), kwargs = remote.call_args
    assert settings.workers == 4 and settings.source == "synthetic" and kwargs == {"push": False, "force_download": False}
