"""Every command shows a path holding rich markup (``[bold]x[/]``) exactly as typed, in errors and in results."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from visionassist_seg.cli.app import app

MARKUP = "[bold]x[/]"


@pytest.fixture
def runner(monkeypatch, tmp_path) -> CliRunner:
    """A wide CliRunner (no wrapping inside the path) in an empty folder, no VASEG_* variables."""
    for name in list(os.environ):
        if name.startswith("VASEG_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return CliRunner(env={"COLUMNS": "400"})


def _shows_as_typed(result, text: str) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert text in result.output, result.output


def _non_empty(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "someone-elses.txt").write_text("keep me\n")
    return folder


@pytest.mark.parametrize(
    "command",
    [
        lambda tmp: ["config", "--config", str(tmp / f"{MARKUP}.toml")],
        lambda tmp: ["precompute", "--no-push", "--skip-download", "--raw-dir", str(tmp / MARKUP), "--output-dir", str(tmp / "out")],
        lambda tmp: ["validate", "--dataset", str(tmp / MARKUP)],
        lambda tmp: ["push", "--dataset", str(tmp / MARKUP)],
        lambda tmp: ["train", "--dataset", str(tmp / MARKUP), "--output-dir", str(tmp / "run"), "--device", "cpu"],
        lambda tmp: ["demo", "--dir", str(_non_empty(tmp / MARKUP))],
        lambda tmp: ["fetch", MARKUP],
    ],
    ids=["config", "precompute", "validate", "push", "train", "demo", "fetch"],
)
def test_error_messages_show_markup_paths_as_typed(runner, tmp_path, monkeypatch, command):
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-test")  # fetch checks the run name once credentials exist
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-test")
    result = runner.invoke(app, command(tmp_path))
    assert result.exit_code in (1, 2), result.output
    _shows_as_typed(result, MARKUP)


def test_download_result_shows_the_markup_raw_dir_as_typed(runner, tmp_path):
    raw = tmp_path / MARKUP
    result = runner.invoke(app, ["download", "--source", "synthetic", "--count", "4", "--raw-dir", str(raw)])
    assert result.exit_code == 0, result.output
    _shows_as_typed(result, str(raw))


def test_validate_table_shows_the_markup_dataset_as_typed(runner, tmp_path, cli_dataset):
    dataset = shutil.copytree(cli_dataset["dataset"], tmp_path / MARKUP)
    report = tmp_path / f"{MARKUP}.json"
    result = runner.invoke(app, ["validate", "--dataset", str(dataset), "--json", str(report)])
    assert result.exit_code == 0, result.output
    _shows_as_typed(result, str(dataset))
    _shows_as_typed(result, f"Report written to {report}")
    assert report.is_file()


def test_config_table_shows_markup_values_as_typed(runner, monkeypatch):
    monkeypatch.setenv("VASEG_RAW_DIR", f"raw/{MARKUP}")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    _shows_as_typed(result, f"raw/{MARKUP}")


def test_markup_in_an_error_value_is_shown_as_typed(runner):
    result = runner.invoke(app, ["train", "--device", f"cuda{MARKUP}"])
    assert result.exit_code == 2
    _shows_as_typed(result, f"cuda{MARKUP}")
