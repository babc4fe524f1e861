"""`vaseg precompute` through the CLI."""

from __future__ import annotations

import json
import signal
from unittest import mock

import numpy as np
import pytest
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
    with mock.patch("visionassist_seg.pipeline.push.push_dataset") as push:
        result = runner.invoke(
            app, ["precompute", "--skip-download", "--no-push", "--raw-dir", str(raw), "--output-dir", str(out), "--workers", "1"]
        )
    assert result.exit_code == 0, result.output
    push.assert_not_called()
    assert "train" in result.output and "samples/s" in result.output and "no labels" in result.output
    assert json.loads((out / "manifest.json").read_text())["splits"]["train"]["rows"] == 4


def test_precompute_cli_dataset_names_the_folder_and_output_dir_is_its_marked_alias(tmp_path):
    raw = _raw(tmp_path)
    args = ["precompute", "--skip-download", "--no-push", "--raw-dir", str(raw), "--workers", "1"]
    result = runner.invoke(app, [*args, "--dataset", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["splits"]["train"]["rows"] == 4
    help_text = " ".join(CliRunner(env={"COLUMNS": "250"}).invoke(app, ["precompute", "--help"]).output.split())
    assert "--dataset" in help_text and "--output-dir is an alias" in help_text


def test_precompute_cli_pushes_with_the_push_code_unless_no_push(tmp_path):
    raw = _raw(tmp_path)
    out = tmp_path / "ds"
    with mock.patch("visionassist_seg.pipeline.push.push_dataset", return_value="https://huggingface.co/datasets/me/eyes") as push:
        result = runner.invoke(
            app,
            ["precompute", "--skip-download", "--raw-dir", str(raw), "--output-dir", str(out), "--hf-repo", "me/eyes", "--workers", "1"],
        )
    assert result.exit_code == 0, result.output
    (dataset_dir, settings), _ = push.call_args
    assert dataset_dir == out and settings.hub.repo == "me/eyes"
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
    assert settings.workers == 4 and settings.raw.source == "synthetic" and kwargs == {"push": False, "force_download": False}


def _args(raw, out, *extra):
    return ["precompute", "--skip-download", "--no-push", "--raw-dir", str(raw), "--output-dir", str(out), "--workers", "1", *extra]


def _one_paragraph(result) -> str:
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in text and text.startswith("Error:"), result.output
    return text


@pytest.mark.parametrize(
    ("output_dir", "expected"),
    [
        ("{tmp}/a_file/out", "Not a directory; part of the path is a regular file"),
        ("{tmp}/a_file", "is a file, not a folder"),
        ("/proc/vaseg-test/out", "Cannot use the folder /proc/vaseg-test/out"),
        ("{tmp}/" + "n" * 300, "File name too long"),
    ],
)
def test_precompute_cli_unusable_output_dir_is_one_paragraph(tmp_path, output_dir, expected):
    (tmp_path / "a_file").write_text("x")
    raw = _raw(tmp_path)
    result = runner.invoke(app, _args(raw, output_dir.format(tmp=tmp_path)))
    assert expected in _one_paragraph(result)


def test_precompute_cli_refuses_someone_elses_folder_then_overwrite_moves_aside(tmp_path):
    raw = _raw(tmp_path)
    out = tmp_path / "theirs"
    (out / "data").mkdir(parents=True)
    (out / "data" / "train-00000-of-00003.parquet").write_bytes(b"theirs")
    (out / "README.md").write_text("their card")
    text = _one_paragraph(runner.invoke(app, _args(raw, out)))
    assert f"Output folder {out} is not empty" in text and "--overwrite" in text
    assert (out / "README.md").read_text() == "their card"
    result = runner.invoke(app, _args(raw, out, "--overwrite"))
    assert result.exit_code == 0, result.output
    assert "moved aside" in result.output and "train-00000-of-00003.parquet" in result.output
    (moved,) = (out / ".vaseg" / "displaced").glob("*/README.md")
    assert moved.read_text() == "their card"


def test_precompute_cli_ctrl_c_is_exit_130_with_one_line(tmp_path):
    with mock.patch("visionassist_seg.pipeline.precompute.run_precompute", side_effect=KeyboardInterrupt):
        result = runner.invoke(app, _args(tmp_path, tmp_path / "ds"))
    assert result.exit_code == 130
    assert [line for line in result.output.splitlines() if line.strip()] == [
        f"Interrupted: the shards finished in {tmp_path / 'ds'} are kept; rerun the same command to resume."
    ]


def test_precompute_cli_prints_user_strings_with_markup_as_typed(tmp_path):
    raw = _raw(tmp_path)
    images = raw / "openEDS" / "openEDS" / "train" / "images"
    next(images.glob("*.png")).rename(images / "eye[bold]1[i].png")  # its label is now missing: skipped, listed
    out = tmp_path / "out[/]put[bold]"
    result = runner.invoke(app, _args(raw, out))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "eye[bold]1[i].png" in text and "label file is missing" in text
    assert "out[/]put[bold]" in text
    missing = runner.invoke(app, _args(tmp_path / "no[/]pe[bold]", tmp_path / "ds2"))
    assert "Raw data folder " + str(tmp_path / "no[/]pe[bold]") + " does not exist" in _one_paragraph(missing)


def test_precompute_cli_second_run_into_one_folder_exits_1_naming_the_first(tmp_path):
    import subprocess
    import sys
    import time

    raw = _raw(tmp_path)
    out = tmp_path / "ds"
    first = subprocess.Popen([sys.executable, "-m", "visionassist_seg", *_args(raw, out, "--shard-size", "1")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and first.poll() is None and "precompute" not in _read(out / ".vaseg.lock"):
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)  # holds its lock, mid-run, while the second starts
        assert first.poll() is None, "the first run finished before the second could start"
        second = runner.invoke(app, _args(raw, out, "--shard-size", "2"))
        text = _one_paragraph(second)
        assert f"Another vaseg run (precompute, process {first.pid}) is using {out}" in text
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=120) == 0, first.stderr.read()
    finally:
        first.kill()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"]["train"]["rows"] == 4 and len(manifest["splits"]["train"]["shards"]) == 4
    assert sorted(p.name for p in (out / "data").iterdir()) == [s["file"].split("/")[1] for s in manifest["splits"]["train"]["shards"] + manifest["splits"]["validation"]["shards"]]


def _read(path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_precompute_cli_shows_names_that_are_not_utf8_escaped(tmp_path):
    import os

    raw = _raw(tmp_path)
    images = raw / "openEDS" / "openEDS" / "train" / "images"
    source = next(images.glob("*.png"))
    with open(os.fsencode(images) + b"/eye\xff.png", "wb") as handle:  # Linux names are bytes, not always UTF-8
        handle.write(source.read_bytes())
    out = tmp_path / os.fsdecode(b"out\xff")
    result = runner.invoke(app, _args(raw, out))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "eye\\xff.png" in text and "is not valid UTF-8" in text and "out\\xff" in text
    assert (out / "README.md").is_file() and (out / "manifest.json").is_file()
