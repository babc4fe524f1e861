"""validate_dataset on every layout `datasets.load_dataset` accepts, and on incomplete or empty splits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from layout_fixtures import write_layout
from validate_fixtures import raw_rows

from visionassist_seg.data.schema import SPLITS
from visionassist_seg.validate import validate_dataset
from visionassist_seg.validate.report import FAIL, LEGACY, PASS, WARN


def rows_of(report) -> dict[str, tuple[str, str]]:
    return {row.check: (row.result, row.details) for row in report.rows}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, raw_root) -> dict[str, Path]:
    """The synthetic raw tree's rows in the seed's legacy layout, vaseg's layout and a card-configs layout."""
    made = {}
    for layout in ("seed", "vaseg", "configs"):
        rows = {split: raw_rows(raw_root, split, legacy=layout == "seed") for split in SPLITS}
        made[layout] = write_layout(tmp_path_factory.mktemp(layout) / "dataset", layout, rows)
    return made


@pytest.fixture
def layout_copy(layouts, tmp_path):
    def copy(layout: str) -> Path:
        return Path(shutil.copytree(layouts[layout], tmp_path / layout))

    return copy


def test_seed_layout_validates_as_legacy_and_recomputes(layouts, raw_dir):
    report = validate_dataset(layouts["seed"], raw_dir=raw_dir, all_rows=True)
    assert report.passed and report.legacy
    rows = rows_of(report)
    assert rows["schema"][0] == LEGACY and rows["recompute"][0] == PASS
    assert rows["structure: manifest"][0] == WARN  # checked for what it has: no manifest is no failure
    result, details = rows["structure: splits"]
    assert result == PASS
    assert "train: 8 rows in 2 shard(s), validation: 2 rows in 1 shard(s)" in details
    assert "datasets' default split patterns" in details and "completeness cannot be checked" in details


@pytest.mark.parametrize(("layout", "source"), [("vaseg", "config 'default'"), ("configs", "config 'default'")])
def test_card_configs_layouts_pass(layouts, layout, source):
    report = validate_dataset(layouts[layout])
    assert report.passed and not report.legacy
    result, details = rows_of(report)["structure: splits"]
    assert result == PASS and f"the card's configs ({source})" in details
    assert report.statistics["train"]["rows"] == 8 and report.statistics["validation"]["rows"] == 2


def test_a_missing_sharded_file_fails_naming_it(layout_copy):
    dataset = layout_copy("vaseg")
    (dataset / "data" / "train-00001-of-00002.parquet").unlink()
    report = validate_dataset(dataset)
    assert [row.check for row in report.failed_rows()] == ["structure: splits"]
    assert (
        "split 'train' is incomplete: 1 of 2 shards missing (data/train-00001-of-00002.parquet)"
        in rows_of(report)["structure: splits"][1]
    )


def test_shards_of_two_runs_fail_as_mixed(layout_copy):
    dataset = layout_copy("vaseg")
    shutil.copy(dataset / "data" / "train-00000-of-00002.parquet", dataset / "data" / "train-00000-of-00003.parquet")
    report = validate_dataset(dataset)
    assert "disagree on the shard count (-of-00002, 00003)" in rows_of(report)["structure: splits"][1]


def test_a_validation_split_with_no_rows_fails(layout_copy):
    from layout_fixtures import write_rows

    dataset = layout_copy("configs")
    for path in (dataset / "frames" / "holdout").iterdir():
        path.unlink()
    write_rows(dataset / "frames" / "holdout" / "part0.parquet", [], legacy=False)
    report = validate_dataset(dataset)
    assert not report.passed
    result, details = rows_of(report)["structure: splits"]
    assert result == FAIL and "split 'validation' has 0 rows" in details


def test_a_card_naming_a_missing_file_fails_structure_without_a_traceback(layout_copy):
    dataset = layout_copy("configs")
    card = (dataset / "README.md").read_text().replace("frames/fit/*.parquet", "frames/fit/part9.parquet")
    (dataset / "README.md").write_text(card)
    report = validate_dataset(dataset)
    result, details = rows_of(report)["structure: splits"]
    assert result == FAIL and "name a data file that does not exist" in details and "part9.parquet" in details


def test_manifest_listing_a_missing_file_fails_the_manifest_row(layout_copy):
    dataset = layout_copy("seed")
    files = ["data/train/shard_00000.parquet", "data/train/shard_00001.parquet", "data/train/shard_00002.parquet"]
    manifest = {"format": "vaseg-precomputed", "splits": {"train": {"rows": 8, "shards": [
        {"file": name, "rows": 4, "sha256": "0" * 64} for name in files]}}}
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    report = validate_dataset(dataset)
    assert "data/train/shard_00002.parquet is listed in manifest.json but missing" in rows_of(report)[
        "structure: manifest"
    ][1]
    assert "no -of-N names: completeness checked by manifest.json" in rows_of(report)["structure: splits"][1]
