"""`vaseg --help`, `vaseg config` and the error handling of the app, through typer's CliRunner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from visionassist_seg.cli.app import _COMMAND_MODULES, app
from visionassist_seg.errors import VasegError

TOKEN = "hf_cl1T0kenValue_0987654321zyxwvu"
HEAVY_MODULES = ("torch", "datasets", "modal", "kagglehub", "huggingface_hub")


@pytest.fixture
def runner(monkeypatch, tmp_path) -> CliRunner:
    """A wide CliRunner in an empty working directory with no VASEG_*/HF_TOKEN variables."""
    for name in list(os.environ):
        if name.startswith("VASEG_") or name == "HF_TOKEN":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return CliRunner(env={"COLUMNS": "250"})


def test_help_lists_every_command(runner):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "VASEG_DEBUG" in result.output
    for command in ("config", "download", "precompute", "validate", "push", "train", "fetch"):
        assert command in result.output
    assert set(_COMMAND_MODULES) >= {"config", "download"}


def test_no_arguments_shows_help(runner):
    result = runner.invoke(app, [])
    assert "config" in result.output
    assert "download" in result.output


def test_config_prints_settings_with_token_masked(runner, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("VASEG_RAW__KAGGLE_DATASET", "someone/env-dataset")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output
    assert "token" in result.output and "HF_TOKEN" in result.output
    assert "**********" in result.output
    assert "someone/env-dataset" in result.output
    assert "epochs" in result.output
    assert TOKEN not in result.output
    assert TOKEN[:10] not in result.output


def test_config_prints_every_setting_once_grouped_by_section(runner):
    from visionassist_seg.settings import env_name, setting_names

    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    printed, section = [], ""
    for line in result.output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 5 and cells[1]:
            section = cells[0] or section
            name = cells[1] if section == "(top)" else f"{section.strip('[]')}.{cells[1]}"
            printed.append(name)
            assert cells[3] == ("HF_TOKEN" if name == "hub.token" else env_name(name))
    assert printed == setting_names()


def test_config_reads_config_file(runner, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[raw]\nkaggle_dataset = "someone/toml-dataset"\n')
    result = runner.invoke(app, ["config", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "someone/toml-dataset" in result.output


def test_config_missing_config_file_exits_1_without_traceback(runner, tmp_path):
    missing = tmp_path / "missing.toml"
    result = runner.invoke(app, ["config", "--config", str(missing)])
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert "missing.toml" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_config_invalid_setting_exits_2_naming_field(runner, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("VASEG_TRAIN__EPOCHS", "zero")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert "epochs" in result.output
    assert "zero" in result.output
    assert "Traceback" not in result.output
    assert TOKEN not in result.output


def test_config_debug_reraises(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("VASEG_DEBUG", "1")
    result = runner.invoke(app, ["config", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 1
    assert isinstance(result.exception, VasegError)
    assert "does not exist" in result.exception.message


def test_cli_import_and_help_do_not_import_heavy_modules():
    code = (
        "import sys\n"
        "import visionassist_seg.cli.app as cli\n"
        f"heavy = {HEAVY_MODULES!r}\n"
        "print('import:', sorted(m for m in heavy if m in sys.modules))\n"
        "try:\n"
        "    cli.app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('help:', sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VASEG_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=Path(__file__).parent, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "import: []" in result.stdout
    assert "help: []" in result.stdout


def test_config_refuses_a_token_in_the_settings_file_without_echoing_it(runner, tmp_path):
    (tmp_path / "vaseg.toml").write_text(f'hf_token = "{TOKEN}"\n')
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert "HF_TOKEN" in result.output and "hf auth login" in result.output
    assert TOKEN not in result.output and TOKEN[:10] not in result.output


def test_config_misspelled_secret_key_is_named_without_its_value(runner, tmp_path):
    (tmp_path / "vaseg.toml").write_text(f'kaggle_kee = "{TOKEN}"\n')
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert "kaggle_kee" in result.output and "Traceback" not in result.output
    assert TOKEN not in result.output and TOKEN[:10] not in result.output


@pytest.mark.parametrize("variable, value", [("VASEG_SEED", "-5"), ("VASEG_TRAIN__DEVICE", "meta")])
def test_config_invalid_seed_or_device_is_one_paragraph_exit_2(runner, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert value in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1  # one paragraph (the runner is 250 columns wide)


def test_an_old_settings_file_works_with_one_warning_line_per_key(runner, tmp_path):
    (tmp_path / "vaseg.toml").write_text('epochs = 3\nkaggle_dataset = "someone/old-style"\n')
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        "Warning: vaseg.toml: `epochs` is now `[train] epochs`; vaseg reads it for now: move the line into the [train] section.",
        "Warning: vaseg.toml: `kaggle_dataset` is now `[raw] kaggle_dataset`; vaseg reads it for now: move the line into "
        "the [raw] section.",
    ]
    assert "someone/old-style" in result.output
