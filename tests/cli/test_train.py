import csv
from pathlib import Path
from unittest import mock

import pytest
import train_fixtures
from cli_helpers import output_text, runner

from visionassist_seg.cli.app import app

FAST = ["--epochs", "1", "--batch-size", "4", "--scale", "0.1", "--workers", "1", "--device", "cpu", "--seed", "0"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return train_fixtures.write_dataset(tmp_path_factory.mktemp("cli") / "dataset")


def _rows(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_train_on_a_local_dataset(dataset, tmp_path):
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", "--dataset", str(dataset), "--output-dir", str(run_dir), *FAST])
    assert result.exit_code == 0, result.output
    assert "Best validation pupil IoU" in output_text(result) and "epoch 1/1" in output_text(result)
    assert (run_dir / "best.onnx").is_file() and len(_rows(run_dir)) == 1


def test_resume_continues_in_the_checkpoint_folder(dataset, tmp_path):
    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["train", "--dataset", str(dataset), "--output-dir", str(run_dir), *FAST]).exit_code == 0
    args = ["train", "--dataset", str(dataset), "--resume", str(run_dir / "last.pt"), *FAST[2:], "--epochs", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Resuming" in output_text(result)
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
    assert settings.modal.gpu == "H100" and settings.train.epochs == 3 and settings.train.run_dir == tmp_path / "run-x"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "a", "--hf-repo", "b/c"], "not both"),
        (["--detach"], "--remote"),
        (["--scale", "1.5"], "scale"),
        (["--seed", "-5"], "seed=-5"),
        (["--device", "meta"], "device='meta'"),
        (["--device", "cuda:x"], "auto, cpu, cuda, cuda:N"),
        (["--lr", "inf"], "lr=inf"),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2
    assert message in output_text(result)
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_missing_dataset_exits_1(tmp_path):
    result = runner.invoke(app, ["train", "--dataset", str(tmp_path / "none"), "--output-dir", str(tmp_path / "r"), *FAST])
    assert result.exit_code == 1
    assert "does not exist" in output_text(result)


# --- issue 10: concurrent runs, resume with other settings, run folders that cannot be made ---------------


@pytest.fixture(scope="module")
def trained_run(dataset, tmp_path_factory) -> Path:
    """A finished one-epoch run (read-only: copy it with `_copy_run` before resuming)."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    result = runner.invoke(app, ["train", "--dataset", str(dataset), "--output-dir", str(run_dir), *FAST])
    assert result.exit_code == 0, result.output
    return run_dir


def _regular_file(path: Path) -> Path:
    path.write_text("not a folder\n")
    return path


def _copy_run(run_dir: Path, tmp_path: Path) -> Path:
    import shutil

    return shutil.copytree(run_dir, tmp_path / "run")


def test_second_training_into_a_locked_run_folder_exits_1_naming_the_holder(dataset, tmp_path):
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from visionassist_seg.folder_lock import folder_lock\n"
         f"with folder_lock(Path({str(run_dir)!r}), 'training'):\n    print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = runner.invoke(app, ["train", "--dataset", str(dataset), "--output-dir", str(run_dir), *FAST])
    finally:
        holder.communicate("")
    assert result.exit_code == 1, result.output
    assert f"(training, process {holder.pid})" in output_text(result) and "Traceback" not in result.output
    assert not (run_dir / "metrics.csv").exists() and not (run_dir / "last.pt").exists()


@pytest.mark.parametrize(
    "make_path",
    [
        lambda tmp: _regular_file(tmp / "file.txt") / "run",
        lambda tmp: Path("/proc/vaseg-cannot-exist/run"),
        lambda tmp: tmp / ("r" * 300),
    ],
    ids=["under-a-file", "under-proc", "name-too-long"],
)
def test_run_folder_that_cannot_be_made_is_one_paragraph(dataset, tmp_path, make_path):
    run_dir = make_path(tmp_path)
    result = runner.invoke(app, ["train", "--dataset", str(dataset), "--output-dir", str(run_dir), *FAST])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert "Cannot create the run folder" in output_text(result) and "--output-dir" in output_text(result)


@pytest.mark.parametrize(
    "args, option",
    [
        (["--scale", "0.2"], "--scale"),
        (["--batch-size", "2"], "--batch-size"),
        (["--lr", "0.5"], "--lr"),
        (["--seed", "3"], "--seed"),
        (["--limit", "4"], "--limit"),
    ],
)
def test_resume_with_another_recipe_setting_exits_2_naming_the_option(dataset, trained_run, tmp_path, args, option):
    run_dir = _copy_run(trained_run, tmp_path)
    before = (run_dir / "metrics.csv").read_text()
    base = ["train", "--resume", str(run_dir / "last.pt"), "--epochs", "2", "--workers", "1", "--device", "cpu"]
    result = runner.invoke(app, [*base, *args])
    assert result.exit_code == 2, result.output
    assert f"{option} is " in output_text(result) and "Traceback" not in result.output
    assert (run_dir / "metrics.csv").read_text() == before


def test_resume_with_a_conflicting_env_value_or_other_dataset_exits_2(dataset, trained_run, tmp_path, monkeypatch):
    run_dir = _copy_run(trained_run, tmp_path)
    other = train_fixtures.write_dataset(tmp_path / "other", train=4, validation=4, seed=9)
    resume = ["train", "--resume", str(run_dir / "last.pt"), "--epochs", "2", "--device", "cpu"]
    result = runner.invoke(app, [*resume, "--dataset", str(other)])
    assert result.exit_code == 2 and "--dataset is " in output_text(result), result.output
    result = runner.invoke(app, resume, env={"VASEG_SCALE": "0.25"})
    assert result.exit_code == 2 and "--scale is 0.25" in output_text(result), result.output
    assert len(_rows(run_dir)) == 1


def test_resume_without_dataset_reads_the_checkpoint_dataset_never_the_hub(dataset, trained_run, tmp_path):
    run_dir = _copy_run(trained_run, tmp_path)
    hub = mock.patch("visionassist_seg.hub.download_dataset", side_effect=AssertionError("went to the Hub"))
    with hub as download:
        result = runner.invoke(app, ["train", "--resume", str(run_dir / "last.pt"), "--epochs", "2", "--workers", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    download.assert_not_called()
    assert [row["epoch"] for row in _rows(run_dir)] == ["1", "2"]
    config = (run_dir / "config.json").read_text()
    assert '"train_height": 40' in config and '"batch_size": 4' in config  # the checkpoint's --scale 0.1 and batch


def test_remote_resume_checks_and_pins_the_recipe_before_starting(trained_run, tmp_path):
    run_dir = _copy_run(trained_run, tmp_path)
    resume = ["train", "--remote", "--resume", str(run_dir / "last.pt"), "--epochs", "3"]
    with mock.patch("visionassist_seg.remote.train_remote", return_value="run") as remote:
        refused = runner.invoke(app, [*resume, "--scale", "0.5"])
        started = runner.invoke(app, resume)
    assert refused.exit_code == 2 and "--scale is 0.5" in output_text(refused), refused.output
    assert started.exit_code == 0, started.output
    remote.assert_called_once()
    settings = remote.call_args.args[0]
    assert (settings.train.scale, settings.train.batch_size, settings.train.epochs, settings.train.source) == (0.1, 4, 3, "local")
