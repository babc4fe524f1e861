"""`vaseg validate` through the CLI on a dataset made by `vaseg precompute`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from visionassist_seg.cli.app import app

runner = CliRunner()


@pytest.fixture
def made(cli_dataset) -> dict[str, Path]:
    """Raw synthetic files and the dataset `vaseg precompute --no-push` makes from them."""
    return cli_dataset


def test_clean_dataset_exits_0_and_writes_json(made, tmp_path):
    report_file = tmp_path / "report.json"
    result = runner.invoke(
        app,
        ["validate", "--dataset", str(made["dataset"]), "--raw-dir", str(made["raw"]), "--all", "--workers", "1",
         "--json", str(report_file)],
    )
    assert result.exit_code == 0, result.output
    assert "passed" in result.stdout and "recompute" in result.stdout
    data = json.loads(report_file.read_text())
    assert data["passed"] is True
    checks = {c["check"]: c["result"] for c in data["checks"]}
    assert checks["recompute"] == "pass" and checks["schema"] == "pass" and checks["structure: manifest"] == "pass"


def test_one_bad_label_pixel_exits_1_naming_the_row(made, tmp_path):
    dataset = Path(shutil.copytree(made["dataset"], tmp_path / "dataset"))
    shard = sorted((dataset / "data").glob("validation-*.parquet"))[0]
    table = pq.read_table(shard)
    rows = table.to_pylist()
    label = np.array(rows[0]["label"], dtype=np.uint8)
    label[399, 639] = 2
    rows[0]["label"] = label.tolist()
    pq.write_table(table.from_pylist(rows, schema=table.schema), shard)
    report_file = tmp_path / "report.json"
    result = runner.invoke(app, ["validate", "--dataset", str(dataset), "--workers", "1", "--json", str(report_file)])
    assert result.exit_code == 1
    assert "values: label" in result.stderr and "Validation failed" in result.stderr
    failing = {c["check"]: c["details"] for c in json.loads(report_file.read_text())["checks"] if c["result"] == "fail"}
    # The shard was rewritten, so its manifest checksum no longer matches either.
    assert set(failing) == {"structure: manifest", "values: label"}
    assert f"validation row 0 ({rows[0]['filename']})" in failing["values: label"]
    assert rows[0]["filename"] in result.stdout


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--dataset", "x", "--hf-repo", "a/b"], "not both"),
        (["--dataset", "x", "--all"], "need --raw-dir"),
        (["--dataset", "x", "--samples", "4"], "need --raw-dir"),
        (["--dataset", "/does/not/exist"], "does not exist"),
    ],
)
def test_usage_errors_exit_2(args, text):
    result = runner.invoke(app, ["validate", *args])
    assert result.exit_code == 2
    assert text in " ".join(result.stderr.split())


def test_bad_option_value_exits_2():
    assert runner.invoke(app, ["validate", "--samples", "0"]).exit_code == 2


def test_without_dataset_validates_the_settings_hub_repo(made, monkeypatch):
    monkeypatch.setenv("VASEG_HF_REPO", "someone/eyes")
    monkeypatch.setenv("VASEG_HF_REVISION", "v3")
    with mock.patch("visionassist_seg.hub.download_dataset", return_value=made["dataset"]) as download:
        result = runner.invoke(app, ["validate", "--workers", "1"])
    assert result.exit_code == 0, result.output
    download.assert_called_once_with("someone/eyes", "v3")
    assert "hf://datasets/someone/eyes@v3" in " ".join(result.stdout.split())


def test_without_a_target_validates_the_folder_push_would_upload(made, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VASEG_OUTPUT_DIR", str(made["dataset"]))
    with mock.patch("visionassist_seg.hub.download_dataset") as download:
        result = runner.invoke(app, ["validate", "--workers", "1"])
    assert result.exit_code == 0, result.output
    download.assert_not_called()
    with mock.patch("visionassist_seg.pipeline.push.push_dataset", return_value="https://hub/x") as push:
        assert runner.invoke(app, ["push"]).exit_code == 0
    assert push.call_args.args[0] == made["dataset"]


def test_revision_alone_validates_the_settings_hub_repo_even_with_a_local_folder(made, monkeypatch):
    monkeypatch.setenv("VASEG_OUTPUT_DIR", str(made["dataset"]))
    monkeypatch.setenv("VASEG_HF_REPO", "someone/eyes")
    with mock.patch("visionassist_seg.hub.download_dataset", return_value=made["dataset"]) as download:
        result = runner.invoke(app, ["validate", "--revision", "v3", "--workers", "1"])
    assert result.exit_code == 0, result.output
    download.assert_called_once_with("someone/eyes", "v3")


def _layout(tmp_path: Path, layout: str) -> Path:
    from layout_fixtures import eye_rows, write_layout

    legacy = layout == "seed"
    rows = {"train": eye_rows(4, 0, "train", legacy=legacy), "validation": eye_rows(2, 0, "validation", legacy=legacy)}
    return write_layout(tmp_path / layout, layout, rows, per_file=2)


def test_the_seeds_legacy_layout_exits_0_reported_as_legacy(tmp_path):
    dataset = _layout(tmp_path, "seed")
    assert (dataset / "data" / "train" / "shard_00001.parquet").is_file() and not (dataset / "README.md").exists()
    report_file = tmp_path / "report.json"
    result = runner.invoke(app, ["validate", "--dataset", str(dataset), "--workers", "1", "--json", str(report_file)])
    assert result.exit_code == 0, result.output
    data = json.loads(report_file.read_text())
    assert data["passed"] is True and data["legacy"] is True
    checks = {c["check"]: c for c in data["checks"]}
    assert checks["schema"]["result"] == "legacy"
    assert "train: 4 rows in 2 shard(s)" in checks["structure: splits"]["details"]


def test_a_deleted_shard_exits_1_naming_it(tmp_path):
    dataset = _layout(tmp_path, "vaseg")
    (dataset / "data" / "validation-00000-of-00001.parquet").unlink()
    (dataset / "data" / "train-00001-of-00002.parquet").unlink()
    report_file = tmp_path / "report.json"
    result = runner.invoke(app, ["validate", "--dataset", str(dataset), "--workers", "1", "--json", str(report_file)])
    assert result.exit_code == 1 and "structure: splits" in result.stderr
    details = {c["check"]: c["details"] for c in json.loads(report_file.read_text())["checks"]}["structure: splits"]
    assert "1 of 2 shards missing (data/train-00001-of-00002.parquet)" in details
    assert "split 'validation' is missing" in details
