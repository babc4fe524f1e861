"""`vaseg train` on every layout `datasets.load_dataset` accepts, locally and from the (fake) Hub; incomplete data stops it."""

from __future__ import annotations

import csv
from pathlib import Path

from hub_fixtures import hub  # noqa: F401  (hub is a fixture)
from layout_fixtures import eye_rows, write_layout
from typer.testing import CliRunner

from visionassist_seg.cli.app import app

runner = CliRunner()
TINY = ["--epochs", "1", "--batch-size", "4", "--scale", "0.1", "--workers", "1", "--device", "cpu", "--seed", "0"]


def _epochs(run_dir: Path) -> list[str]:
    with (run_dir / "metrics.csv").open() as handle:
        return [row["epoch"] for row in csv.DictReader(handle)]


def test_train_on_the_seeds_legacy_layout(tmp_path):
    rows = {"train": eye_rows(4, 0, "train", legacy=True), "validation": eye_rows(2, 0, "validation", legacy=True)}
    dataset = write_layout(tmp_path / "seed", "seed", rows, per_file=2)
    result = runner.invoke(app, ["train", "--dataset", str(dataset), "--output-dir", str(tmp_path / "run"), *TINY])
    assert result.exit_code == 0, result.output
    assert _epochs(tmp_path / "run") == ["1"]


def test_train_from_a_hub_repository_with_card_configs(hub, tmp_path):
    fake = hub("configs")
    result = runner.invoke(app, ["train", "--hf-repo", "someone/eyes", "--output-dir", str(tmp_path / "run"), *TINY])
    assert result.exit_code == 0, result.output
    assert _epochs(tmp_path / "run") == ["1"]
    fetched = {name for call in fake.downloads for name in call["allow_patterns"]}
    assert "data/train-00000-of-00001.parquet" not in fetched  # a stale file the card's configs leave out


def test_train_with_a_deleted_shard_exits_1_naming_it(tmp_path):
    rows = {"train": eye_rows(4, 0, "train"), "validation": eye_rows(2, 0, "validation")}
    dataset = write_layout(tmp_path / "vaseg", "vaseg", rows, per_file=2)
    (dataset / "data" / "train-00000-of-00002.parquet").unlink()
    result = runner.invoke(app, ["train", "--dataset", str(dataset), "--output-dir", str(tmp_path / "run"), *TINY])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "incomplete" in text and "data/train-00000-of-00002.parquet" in text
    assert not (tmp_path / "run" / "metrics.csv").exists()
