"""The demo folder: --overwrite removes only the parts an earlier demo recorded; one demo per folder at a time."""

from __future__ import annotations

from unittest import mock

import pytest
from typer.testing import CliRunner

from visionassist_seg.cli.app import app
from visionassist_seg.errors import VasegError
from visionassist_seg.folder_lock import folder_lock
from visionassist_seg.pipeline import demo

runner = CliRunner()
FAST = ["--count", "8", "--epochs", "1", "--scale", "0.1"]


def _earlier_demo(directory):
    """Lay out what an earlier demo left: its record and its three parts, plus a user's own file."""
    directory.mkdir()
    demo.prepare_directory(directory, [])
    for part in demo.DEMO_PARTS:
        (directory / part).mkdir()
        (directory / part / "made-by-demo.txt").write_text(part)
    (directory / "notes.txt").write_text("mine")


def test_demo_overwrite_never_deletes_a_part_no_demo_made(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "my-eyes.png").write_bytes(b"precious")
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path), "--overwrite", *FAST])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"Demo folder {tmp_path} holds raw/ that no earlier demo made" in text and "Traceback" not in text
    assert (tmp_path / "raw" / "my-eyes.png").read_bytes() == b"precious"


def test_demo_overwrite_removes_the_recorded_parts_and_nothing_else(tmp_path):
    directory = tmp_path / "demo"
    _earlier_demo(directory)
    parts = demo.check_directory(directory, overwrite=True)
    assert parts == list(demo.DEMO_PARTS)
    demo.prepare_directory(directory, parts)
    assert not any((directory / part).exists() for part in demo.DEMO_PARTS)
    assert (directory / "notes.txt").read_text() == "mine"
    assert demo.demo_parts_made(directory) == list(demo.DEMO_PARTS)


def test_demo_without_overwrite_names_the_earlier_demo(tmp_path):
    directory = tmp_path / "demo"
    _earlier_demo(directory)
    with pytest.raises(VasegError, match=r"not empty \(it holds an earlier demo's raw, dataset, run\)"):
        demo.check_directory(directory, overwrite=False)
    assert (directory / "raw" / "made-by-demo.txt").exists()


def test_demo_refuses_a_folder_another_demo_holds(tmp_path):
    directory = tmp_path / "demo"
    _earlier_demo(directory)
    with folder_lock(directory, "demo"), mock.patch.object(demo, "_run_demo_steps") as steps:
        with pytest.raises(VasegError, match=r"Another vaseg run \(demo, process \d+\) is using"):
            demo.run_demo(directory, overwrite=True)
    steps.assert_not_called()
    assert (directory / "run" / "made-by-demo.txt").exists()  # the running demo's files are untouched
