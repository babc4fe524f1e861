"""`ValidationReport.write_json`: atomic, and a failed write names the path and leaves no temporary file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import pytest
from typer.testing import CliRunner

from visionassist_seg.cli.app import app
from visionassist_seg.errors import VasegError
from visionassist_seg.validate.report import CheckRow, ValidationReport

runner = CliRunner(env={"COLUMNS": "300"})


def _report() -> ValidationReport:
    return ValidationReport("somewhere", [CheckRow("schema", "pass", "all columns")])


def _leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def test_write_json_writes_the_report(tmp_path):
    target = tmp_path / "new" / "report.json"
    _report().write_json(target)
    assert json.loads(target.read_text())["checks"] == [{"check": "schema", "result": "pass", "details": "all columns"}]
    assert _leftovers(target.parent) == []


def test_write_json_to_a_folder_names_it_and_leaves_nothing(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    with pytest.raises(VasegError) as caught:
        _report().write_json(folder)
    assert str(folder) in caught.value.message and "--json" in caught.value.message
    assert _leftovers(tmp_path) == [] and os.listdir(folder) == []


def test_write_json_under_a_regular_file_is_one_paragraph(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(VasegError, match="Cannot write the JSON report"):
        _report().write_json(blocker / "report.json")


def test_a_failed_replace_removes_the_temporary_file(tmp_path):
    target = tmp_path / "report.json"
    with mock.patch("visionassist_seg.atomic_write.os.replace", side_effect=OSError(28, "No space left on device")):
        with pytest.raises(VasegError) as caught:
            _report().write_json(target)
    assert str(target) in caught.value.message and "No space left" in caught.value.message
    assert _leftovers(tmp_path) == [] and not target.exists()


def test_validate_json_pointing_at_a_folder_exits_2_before_validating(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with mock.patch("visionassist_seg.validate.validate_dataset") as validate:
        result = runner.invoke(app, ["validate", "--dataset", str(tmp_path), "--json", str(folder)])
    assert result.exit_code == 2, result.output
    assert "is a folder" in result.output and str(folder) in " ".join(result.output.split())
    assert "Traceback" not in result.output
    validate.assert_not_called()
    assert os.listdir(folder) == []
