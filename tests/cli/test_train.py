import csv
import importlib.util
from pathlib import Path
from unittest import mock

import pytest
from typer.testing import CliRunner

from visionassist_seg.cli.app import app

_spec = importlib.util.spec_from_file_location("train_datasets", Path(__file__).parents[1] / "train" / "train_fixtures.py")
_datasets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_datasets)

runner = CliRunner()


def _text(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())
FAST = ["--epochs", "1", "--batch-size", "4", "--scale", "0.1", "--workers", "1", "--device", "cpu", "--seed", "0"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _datasets.write_dataset(tmp_path_factory.mktemp("cli") / "dataset")


def _rows(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_train_on_a_local_dataset(dataset, tmp_path):
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", "--dataset", str(dataset), "--output-dir", str(run_dir), *FAST])
    assert result.exit_code == 0, result.output
    assert "Best validation pupil IoU" in _text(result) and "epoch 1/1" in _text(result)
    assert (run_dir / "best.onnx").is_file() and len(_rows(run_dir)) == 1


def test_resume_continues_in_the_checkpoint_folder(dataset, tmp_path):
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["train", "--dataset", str(dataset), "--output-dir", str(run_dir), *FAST]).exit_code == 0
    args = ["train", "--dataset", str(dataset), "--resume", str(run_dir / "last.pt"), *FAST[2:], "--epochs", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Resuming" in _text(result)
    assert [row["epoch"] for row in _rows(run_dir)] == ["1", "2"]


def test_hf_repo_reads_the_downloaded_folder(dataset, tmp_path):
    with mock.patch("visionassist_seg.hub.download_dataset", return_value=dataset) as download:
        result = runner.invoke(
            app, ["train", "--hf-repo", "someone/eyes", "--revision", "v1", "--output-dir", str(tmp_path / "r"), *FAST]
        )
    assert result.exit_code == 0, result.output
    download.assert_called_once_with("someone/eyes", revision="v1")


def test_remote_hands_the_settings_to_train_remote(tmp_path):
    with mock.patch("visionassist_seg.remote.train_remote", return_value="run-x") as remote, mock.patch(
        "visionassist_seg.train.loop.train"
    ) as local:
        result = runner.invoke(
            app, ["train", "--remote", "--gpu", "H100", "--detach", "--epochs", "3", "--output-dir", str(tmp_path / "run-x")]
        )
    assert result.exit_code == 0, result.output
    local.assert_not_called()
    settings = remote.call_args.args[0]
    assert remote.call_args.kwargs == {"detach": True}
    assert settings.gpu == "H100" and settings.epochs == 3 and settings.run_dir == tmp_path / "run-x"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "a", "--hf-repo", "b/c"], "not both"),
        (["--detach"], "--remote"),
        (["--scale", "1.5"], "scale"),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2
    assert message in _text(result)


def test_missing_dataset_exits_1(tmp_path):
    result = runner.invoke(app, ["train", "--dataset", str(tmp_path / "none"), "--output-dir", str(tmp_path / "r"), *FAST])
    assert result.exit_code == 1
    assert "does not exist" in _text(result)
