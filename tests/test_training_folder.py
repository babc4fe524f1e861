"""local_training_folder in 'auto' mode finds a local dataset in any layout `datasets` accepts."""

from __future__ import annotations

import pytest
from layout_fixtures import eye_rows, write_layout

from visionassist_seg.data.training_folder import local_training_folder
from visionassist_seg.settings import Settings


@pytest.mark.parametrize("layout", ["seed", "configs"])
def test_auto_trains_on_output_dir_when_datasets_finds_splits_there(tmp_path, layout):
    rows = {"train": eye_rows(1, 0, "train", legacy=layout == "seed"), "validation": eye_rows(1, 0, "validation")}
    write_layout(tmp_path, layout, rows)
    assert local_training_folder(Settings(dataset={"dir": tmp_path}, train={"source": "auto"})) == tmp_path


def test_auto_falls_back_to_the_hub_without_parquet_splits(tmp_path):
    (tmp_path / "notes.txt").write_text("no data here")
    assert local_training_folder(Settings(dataset={"dir": tmp_path}, train={"source": "auto"})) is None
    assert local_training_folder(Settings(dataset={"dir": tmp_path / "absent"}, train={"source": "auto"})) is None
