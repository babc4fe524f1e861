"""Where precompute may write: someone else's folder is refused, --overwrite moves (never deletes), one run at a time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from visionassist_seg.pipeline.precompute import run_precompute
from visionassist_seg.data.schema import list_shards
from visionassist_seg.errors import VasegError
from visionassist_seg.folder_lock import folder_lock


def _someone_elses_dataset(folder: Path) -> dict[str, bytes]:
    """Make a folder that looks like another tool's Hub dataset; return its files' bytes by relative path."""
    files = {
        "data/train-00000-of-00003.parquet": b"their shard 0",
        "data/train-00001-of-00003.parquet": b"their shard 1",
        "README.md": b"# their card\n",
        "manifest.json": b'{"theirs": true}\n',
        "notes.txt": b"keep me\n",
    }
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return files


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_precompute_refuses_a_folder_it_did_not_make_and_changes_nothing(raw_dir, make_settings, tmp_path):
    folder = tmp_path / "theirs"
    before = _someone_elses_dataset(folder)
    with pytest.raises(VasegError) as caught:
        run_precompute(make_settings(raw_dir, folder), download=False, progress=False)
    message = caught.value.message
    assert str(folder) in message and "--overwrite" in message and "nothing is deleted" in message
    assert "data/train-00000-of-00003.parquet" in message and "README.md" in message
    assert _files(folder) == before  # not even a lock file was added


def test_precompute_overwrite_moves_files_in_the_way_aside_and_deletes_nothing(raw_dir, make_settings, tmp_path):
    folder = tmp_path / "theirs"
    before = _someone_elses_dataset(folder)
    report = run_precompute(make_settings(raw_dir, folder), download=False, progress=False, overwrite=True)
    assert report.rows == {"train": 8, "validation": 2}
    (displaced,) = (folder / ".vaseg" / "displaced").iterdir()
    moved = {name: data for name, data in before.items() if name != "notes.txt"}
    assert _files(displaced) == moved  # every file in the way, byte for byte, at its old relative path
    assert (folder / "notes.txt").read_bytes() == before["notes.txt"]  # not in the way: untouched
    assert [p.name for p in list_shards(folder)["train"]] == ["train-00000-of-00001.parquet"]
    assert sorted(report.displaced) == sorted(str(displaced / name) for name in moved)
    # The folder is now precompute's own: a rerun needs no --overwrite and resumes.
    assert run_precompute(make_settings(raw_dir, folder), download=False, progress=False).resumed_shards == 2


def test_precompute_never_deletes_a_shard_it_has_no_record_of(raw_dir, make_settings):
    settings = make_settings(raw_dir, shard_size=2)
    run_precompute(settings, download=False, progress=False)
    stranger = settings.dataset.dir / "data" / "train-00003-of-00009.parquet"
    stranger.write_bytes(b"not written by vaseg")
    with pytest.raises(VasegError, match="data/ holds shards vaseg did not write \\(train-00003-of-00009.parquet\\)"):
        run_precompute(settings.updated(dataset={"limit": 3}), download=False, progress=False)
    assert stranger.read_bytes() == b"not written by vaseg"
    assert len(list_shards(settings.dataset.dir)["train"]) == 5  # nothing was removed


def test_precompute_removes_only_stale_shards_it_recorded(raw_dir, make_settings):
    settings = make_settings(raw_dir, shard_size=2)
    run_precompute(settings, download=False, progress=False)
    # A run killed between writing a record and moving its shard leaves a record without a shard.
    (settings.dataset.dir / ".vaseg" / "shards" / "train-00005-of-00007.parquet.json").write_text("{}")
    run_precompute(settings.updated(dataset={"shard_size": 8}), download=False, progress=False)
    assert [p.name for p in list_shards(settings.dataset.dir)["train"]] == ["train-00000-of-00001.parquet"]
    records = sorted(p.name for p in (settings.dataset.dir / ".vaseg" / "shards").iterdir())
    assert records == ["train-00000-of-00001.parquet.json", "validation-00000-of-00001.parquet.json"]


def test_precompute_writes_into_an_empty_folder_and_marks_it(raw_dir, make_settings, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    run_precompute(make_settings(raw_dir, folder), download=False, progress=False)
    assert json.loads((folder / ".vaseg" / "owner.json").read_text())["job"] == "precompute"


def test_precompute_refuses_a_file_as_output_dir(raw_dir, make_settings, tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(VasegError, match="is a file, not a folder"):
        run_precompute(make_settings(raw_dir, tmp_path / "a_file"), download=False, progress=False)


def test_precompute_refuses_a_folder_another_run_holds(raw_dir, make_settings, tmp_path):
    settings = make_settings(raw_dir)
    with folder_lock(settings.dataset.dir, "precompute"):
        with pytest.raises(VasegError, match=rf"Another vaseg run \(precompute, process {os.getpid()}\) is using"):
            run_precompute(settings, download=False, progress=False)
    assert list_shards(settings.dataset.dir) == {}


def test_precompute_refuses_another_vaseg_jobs_folder_even_if_otherwise_empty(raw_dir, make_settings, tmp_path):
    folder = tmp_path / "demo"
    (folder / ".vaseg").mkdir(parents=True)
    (folder / ".vaseg" / "owner.json").write_text('{"job": "demo", "made": ["raw", "dataset", "run"]}')
    with pytest.raises(VasegError, match=r"it holds \.vaseg/owner\.json of a vaseg demo"):
        run_precompute(make_settings(raw_dir, folder), download=False, progress=False)
    assert json.loads((folder / ".vaseg" / "owner.json").read_text())["job"] == "demo"
