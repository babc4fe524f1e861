"""`vaseg download` through typer's CliRunner, with kagglehub patched at its entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest.mock import patch

import pytest
from typer.testing import CliRunner

from visionassist_seg.cli.app import app
from visionassist_seg.data.raw import is_complete
from visionassist_seg.data.synthetic import write_synthetic_raw
from visionassist_seg.errors import VasegError

DATASET = "soumicksarker/openeds-dataset"
KEY = "k3y-cli-tester-a1b2c3d4e5f60718293a"


@pytest.fixture
def kaggle_dir(monkeypatch, tmp_path) -> Path:
    """Fresh HOME with an empty ~/.kaggle, no KAGGLE_*/VASEG_* variables, cwd an empty folder."""
    for name in list(os.environ):
        if name.startswith(("KAGGLE_", "VASEG_")) or name == "HF_TOKEN":
            monkeypatch.delenv(name)
    folder = tmp_path / "home" / ".kaggle"
    folder.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(folder.parent))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(folder))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    import kagglehub.config

    monkeypatch.setattr(kagglehub.config, "_kaggle_credentials", None)
    return folder


@pytest.fixture
def runner(kaggle_dir) -> CliRunner:
    return CliRunner(env={"COLUMNS": "250"})


def synthetic_download(handle, path=None, *, force_download=False, output_dir=None):
    write_synthetic_raw(Path(output_dir), 4, seed=0)
    return output_dir


def test_download_synthetic_writes_kaggle_layout(runner, tmp_path):
    raw_dir = tmp_path / "raw"
    with patch("kagglehub.dataset_download") as download:
        result = runner.invoke(app, ["download", "--source", "synthetic", "--count", "4", "--raw-dir", str(raw_dir)])
    assert result.exit_code == 0, result.output
    download.assert_not_called()
    root = raw_dir / "openEDS" / "openEDS"
    counts = {split: len(list((root / split / "images").glob("*.png"))) for split in ("train", "validation", "test")}
    assert counts == {"train": 4, "validation": 1, "test": 1}
    assert len(list((root / "validation" / "labels").glob("*.npy"))) == 1
    assert is_complete(raw_dir)
    assert "ready" in result.stdout
    assert str(root) in result.stdout.replace("\n", "")


def test_download_synthetic_again_is_idempotent(runner, tmp_path):
    raw_dir = tmp_path / "raw"
    args = ["download", "--source", "synthetic", "--count", "4", "--raw-dir", str(raw_dir)]
    assert runner.invoke(app, args).exit_code == 0
    with patch("visionassist_seg.data.synthetic.write_synthetic_raw") as write:
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    write.assert_not_called()


def test_download_kaggle_without_credentials_exits_1(runner, tmp_path):
    raw_dir = tmp_path / "raw"
    with patch("kagglehub.dataset_download") as download:
        result = runner.invoke(app, ["download", "--raw-dir", str(raw_dir)])
    assert result.exit_code == 1
    assert "No Kaggle credentials" in result.stderr
    assert "KAGGLE_USERNAME" in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    download.assert_not_called()
    assert not raw_dir.exists()


def test_download_kaggle_debug_reraises(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("VASEG_DEBUG", "1")
    result = runner.invoke(app, ["download", "--raw-dir", str(tmp_path / "raw")])
    assert result.exit_code == 1
    assert isinstance(result.exception, VasegError)
    assert "No Kaggle credentials" in result.exception.message


def test_download_kaggle_with_credentials(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_USERNAME", "cli-tester")
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    raw_dir = tmp_path / "raw"
    with patch("kagglehub.dataset_download", side_effect=synthetic_download) as download:
        result = runner.invoke(app, ["download", "--raw-dir", str(raw_dir)])
    assert result.exit_code == 0, result.output
    download.assert_called_once()
    assert download.call_args.args == (DATASET,)
    assert download.call_args.kwargs["output_dir"] == str(raw_dir)
    assert "ready" in result.stdout
    assert KEY not in result.output


def test_download_kaggle_force_fetches_again(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", KEY)
    raw_dir = tmp_path / "raw"
    write_synthetic_raw(raw_dir, 4, seed=0)
    with patch("kagglehub.dataset_download", side_effect=synthetic_download) as download:
        assert runner.invoke(app, ["download", "--raw-dir", str(raw_dir)]).exit_code == 0
        download.assert_not_called()
        result = runner.invoke(app, ["download", "--raw-dir", str(raw_dir), "--force"])
    assert result.exit_code == 0, result.output
    download.assert_called_once()
    assert download.call_args.kwargs["force_download"] is True


def _download_with_kaggle_json(runner, kaggle_dir, tmp_path, mode: int):
    """Run `vaseg download` with credentials only in a kaggle.json of file ``mode``."""
    path = kaggle_dir / "kaggle.json"
    path.write_text(json.dumps({"username": "cli-tester", "key": KEY}))
    path.chmod(mode)
    with patch("kagglehub.dataset_download", side_effect=synthetic_download):
        result = runner.invoke(app, ["download", "--raw-dir", str(tmp_path / "raw")])
    assert result.exit_code == 0, result.output
    return result


def test_download_kaggle_warns_about_readable_kaggle_json(runner, kaggle_dir, tmp_path):
    result = _download_with_kaggle_json(runner, kaggle_dir, tmp_path, 0o644)
    assert "chmod 600" in result.stderr
    assert KEY not in result.output


def test_download_kaggle_no_warning_for_private_kaggle_json(runner, kaggle_dir, tmp_path):
    result = _download_with_kaggle_json(runner, kaggle_dir, tmp_path, 0o600)
    assert "Warning" not in result.output


def test_download_unknown_source_exits_2(runner, tmp_path):
    result = runner.invoke(app, ["download", "--source", "ftp", "--raw-dir", str(tmp_path / "raw")])
    assert result.exit_code == 2
    assert "source" in result.output
    assert "ftp" in result.output
    assert "Traceback" not in result.output


def test_download_of_an_unknown_kaggle_dataset_exits_1_naming_the_id(runner, kaggle_dir, monkeypatch, tmp_path):
    """The real kagglehub client against a scripted local server (KAGGLE_API_ENVIRONMENT=TEST)."""
    from http_stub import Reply, StubServer
    from kagglesdk import kaggle_env

    monkeypatch.setenv("KAGGLE_USERNAME", "cli-tester")
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    monkeypatch.setenv("VASEG_KAGGLE_DATASET", "nobody/missing")
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    with StubServer() as server:
        monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.TEST, server.url)
        server.route("POST", r"/api/v1/datasets\.DatasetApiService/GetDataset", Reply(404, {"code": 404, "message": "x"}))
        result = runner.invoke(app, ["download", "--raw-dir", str(tmp_path / "raw")])
    assert result.exit_code == 1
    assert "'nobody/missing' was not found (HTTP 404)" in result.stderr and "Traceback" not in result.output
    assert KEY not in result.stderr


def test_download_shows_a_raw_dir_with_brackets_as_typed(runner, tmp_path):
    raw = tmp_path / "raw [bold]x[/bold]"
    result = runner.invoke(app, ["download", "--source", "synthetic", "--count", "4", "--raw-dir", str(raw)])
    assert result.exit_code == 0, result.output
    assert "[bold]x[/bold]" in result.stdout
