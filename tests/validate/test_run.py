"""validate_dataset on a tiny precomputed dataset: clean passes, each broken row is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow.parquet as pq
import pytest
from validate_fixtures import edit_row, read_rows

from visionassist_seg.errors import VasegError
from visionassist_seg.validate import validate_dataset
from visionassist_seg.validate.report import FAIL, LEGACY, PASS, SKIP

ALL_CHECKS = [
    "structure: splits",
    "structure: manifest",
    "schema",
    "values: label",
    "values: spatial_weights",
    "values: dist_map",
    "values: image",
    "values: filenames unique",
    "values: splits disjoint",
    "recompute",
    "statistics: train",
    "statistics: validation",
]


def failed(report) -> dict[str, str]:
    return {row.check: row.details for row in report.rows if row.result == FAIL}


def results(report) -> dict[str, str]:
    return {row.check: row.result for row in report.rows}


def test_clean_dataset_passes_every_check(dataset):
    report = validate_dataset(dataset)
    assert report.passed and not report.legacy
    assert [row.check for row in report.rows] == ALL_CHECKS
    assert results(report)["recompute"] == SKIP
    assert all(results(report)[c] == PASS for c in ALL_CHECKS[:9])
    assert report.statistics["train"]["rows"] == 8 and report.statistics["validation"]["rows"] == 2
    assert 0 < report.statistics["train"]["image_mean"] < 255


def test_clean_dataset_recomputes_exactly_from_raw(dataset, raw_dir):
    report = validate_dataset(dataset, raw_dir=raw_dir, all_rows=True)
    assert report.passed
    assert results(report)["recompute"] == PASS
    assert "all rows" in {r.check: r.details for r in report.rows}["recompute"]


def test_one_label_pixel_fails_values_label_naming_the_row(dataset):
    row = edit_row(dataset, "train", 5, label=lambda r: r["label"].__setitem__((0, 0), 2))
    report = validate_dataset(dataset)
    assert not report.passed
    assert list(failed(report)) == ["values: label"]
    assert f"train row 5 ({row['filename']})" in failed(report)["values: label"]


def test_one_weight_off_the_boundary_fails_values_spatial_weights(dataset):
    row = edit_row(dataset, "validation", 1, spatial_weights=lambda r: r["spatial_weights"].__setitem__((0, 0), 20.0))
    report = validate_dataset(dataset)
    assert list(failed(report)) == ["values: spatial_weights"]
    assert f"validation row 1 ({row['filename']})" in failed(report)["values: spatial_weights"]


def _positive_inside_pupil(row: dict) -> None:
    y, x = np.argwhere(row["label"] == 1)[0]
    row["dist_map"][1, y, x] = 0.25


def test_one_distance_value_fails_values_dist_map(dataset):
    row = edit_row(dataset, "train", 2, dist_map=_positive_inside_pupil)
    report = validate_dataset(dataset)
    assert list(failed(report)) == ["values: dist_map"]
    assert f"train row 2 ({row['filename']})" in failed(report)["values: dist_map"]


def test_constant_image_fails_values_image(dataset):
    row = edit_row(dataset, "train", 7, image=lambda r: r["image"].fill(9))
    report = validate_dataset(dataset)
    assert list(failed(report)) == ["values: image"]
    assert f"train row 7 ({row['filename']})" in failed(report)["values: image"]


def test_duplicated_filename_fails_filenames_unique(dataset):
    first = read_rows(dataset, "train")[0]["filename"]
    edit_row(dataset, "train", 6, filename=first)
    report = validate_dataset(dataset)
    assert list(failed(report)) == ["values: filenames unique"]
    assert f"train row 6 ({first}): duplicate of train row 0" in failed(report)["values: filenames unique"]


def test_same_filename_with_other_images_in_two_splits_passes_with_a_note(dataset):
    train_name = read_rows(dataset, "train")[3]["filename"]
    edit_row(dataset, "validation", 0, filename=train_name)
    report = validate_dataset(dataset)
    assert report.passed
    details = {r.check: r.details for r in report.rows}["values: splits disjoint"]
    assert f"1 filename(s) ({train_name}) appear in more than one split with different images" in details


def test_same_image_in_two_splits_fails_naming_both_rows(dataset):
    train_row = read_rows(dataset, "train")[3]
    validation_name = read_rows(dataset, "validation")[1]["filename"]
    copied = {name: train_row[name] for name in ("image", "label", "spatial_weights", "dist_map")}
    edit_row(dataset, "validation", 1, **copied)  # the same frame under another name
    report = validate_dataset(dataset)
    assert list(failed(report)) == ["values: splits disjoint"]
    assert (
        f"validation row 1 ({validation_name}): same image as train row 3 ({train_row['filename']})"
        in failed(report)["values: splits disjoint"]
    )


def test_missing_split_fails_structure(dataset):
    for path in (dataset / "data").glob("validation-*.parquet"):
        path.unlink()
    manifest = json.loads((dataset / "manifest.json").read_text())
    del manifest["splits"]["validation"]
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    report = validate_dataset(dataset)
    assert list(failed(report)) == ["structure: splits"]
    assert "split 'validation' is missing" in failed(report)["structure: splits"]


def test_shard_not_matching_its_checksum_fails_manifest(dataset):
    shard = dataset / "data" / "train-00001-of-00002.parquet"
    pq.write_table(pq.read_table(shard), shard, row_group_size=2, compression="snappy")  # same rows, other bytes
    report = validate_dataset(dataset)
    assert list(failed(report)) == ["structure: manifest"]
    assert "data/train-00001-of-00002.parquet sha256" in failed(report)["structure: manifest"]


def test_shard_missing_from_manifest_fails_manifest(dataset):
    manifest = json.loads((dataset / "manifest.json").read_text())
    manifest["splits"]["train"]["rows"] = 9
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    report = validate_dataset(dataset)
    assert list(failed(report)) == ["structure: manifest"]
    assert "split 'train' has 8 rows, manifest.json says 9" in failed(report)["structure: manifest"]


def test_recompute_catches_an_image_one_grey_level_off(dataset, raw_dir):
    def nudge(row: dict) -> None:
        y, x = np.argwhere(row["image"] < 255)[0]
        row["image"][y, x] += 1

    row = edit_row(dataset, "train", 4, image=nudge)
    assert validate_dataset(dataset).passed  # nothing else can see it
    report = validate_dataset(dataset, raw_dir=raw_dir, all_rows=True)
    assert list(failed(report)) == ["recompute"]
    details = failed(report)["recompute"]
    assert f"train row 4 ({row['filename']})" in details and "image differs" in details and "1 pixels" in details


def test_recompute_samples_are_a_seeded_choice(dataset, raw_dir):
    first = validate_dataset(dataset, raw_dir=raw_dir, samples=3, seed=5)
    details = {r.check: r.details for r in first.rows}["recompute"]
    assert first.passed and details.startswith("3 random rows (seed 5)")


def test_preprocessed_false_fails_schema(dataset):
    row = edit_row(dataset, "train", 1, preprocessed=False)
    report = validate_dataset(dataset)
    assert list(failed(report)) == ["schema"]
    assert f"train row 1 ({row['filename']}): preprocessed is False" in failed(report)["schema"]


def test_nested_arrays_without_preprocessed_column_fail_schema_not_legacy(dataset):
    shard = dataset / "data" / "validation-00000-of-00001.parquet"
    table = pq.read_table(shard)
    pq.write_table(table.drop_columns(["preprocessed"]), shard)
    report = validate_dataset(dataset)
    assert "schema" in failed(report) and not report.legacy
    assert "validation-00000-of-00001.parquet: columns are" in failed(report)["schema"]


def test_corrupt_shard_fails_structure_and_does_not_crash(dataset):
    (dataset / "data" / "train-00000-of-00002.parquet").write_bytes(b"not parquet at all")
    report = validate_dataset(dataset)
    assert "not a readable parquet file" in failed(report)["structure: splits"]
    assert results(report)["values: label"] == PASS  # the readable shards were still checked


def test_legacy_format_is_reported_as_legacy(legacy_dataset, raw_dir):
    report = validate_dataset(legacy_dataset, raw_dir=raw_dir, all_rows=True)
    assert report.legacy and report.passed
    assert results(report)["schema"] == LEGACY
    assert results(report)["recompute"] == PASS  # legacy images are compared with the raw image


def test_parallel_workers_give_the_same_report(dataset):
    edit_row(dataset, "train", 3, label=lambda r: r["label"].__setitem__((0, 0), 3))
    serial = validate_dataset(dataset)
    parallel = validate_dataset(dataset, workers=2)
    assert parallel.rows == serial.rows and parallel.statistics == serial.statistics


def test_report_json_has_the_table_content(dataset, tmp_path):
    report = validate_dataset(dataset)
    report.write_json(tmp_path / "out" / "report.json")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["passed"] is True
    assert [(c["check"], c["result"], c["details"]) for c in data["checks"]] == [
        (r.check, r.result, r.details) for r in report.rows
    ]
    assert data["statistics"]["validation"]["rows"] == 2


def test_hub_target_downloads_and_skips_the_manifest(dataset, tmp_path):
    snapshot = Path(shutil.copytree(dataset, tmp_path / "snapshot"))
    (snapshot / "manifest.json").unlink()
    with mock.patch("visionassist_seg.hub.download_dataset", return_value=snapshot) as download:
        report = validate_dataset(hf_repo="someone/eyes", revision="v1")
    download.assert_called_once_with("someone/eyes", "v1")
    assert report.passed and report.target == "hf://datasets/someone/eyes@v1"
    assert results(report)["structure: manifest"] == SKIP


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({}, "exactly one"),
        ({"dataset_dir": Path("x"), "hf_repo": "a/b"}, "exactly one"),
        ({"dataset_dir": Path("/does/not/exist")}, "does not exist"),
        ({"dataset_dir": Path("."), "samples": 0}, "--samples"),
    ],
)
def test_usage_errors_exit_2(kwargs, text):
    with pytest.raises(VasegError) as caught:
        validate_dataset(**kwargs)
    assert caught.value.exit_code == 2 and text in caught.value.message
