"""precompute end to end on synthetic data: schema, exact rows, determinism, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import pytest
from pydantic import SecretStr

from visionassist_seg.data import precompute
from visionassist_seg.data.precompute import plan_shards
from visionassist_seg.pipeline.precompute import run_precompute
from visionassist_seg.data.raw import read_image, read_label, require_data_root
from visionassist_seg.data.schema import list_shards
from visionassist_seg.data.shards import sha256_file
from visionassist_seg.errors import VasegError
from visionassist_seg.ops import preprocess_sample


def _shard_bytes(output_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for shards in list_shards(output_dir).values() for p in shards}


def test_precompute_load_dataset_matches_ops_row_by_row(raw_dir, make_settings, tmp_path):
    import datasets

    settings = make_settings(raw_dir)
    report = run_precompute(settings, download=False, progress=False)
    assert report.rows == {"train": 8, "validation": 2}
    assert report.unlabeled_splits == ["test"]
    # datasets caches a local folder by its name: a fresh cache_dir keeps this test honest.
    loaded = datasets.load_dataset(str(settings.dataset.dir), cache_dir=str(tmp_path / "hf_cache"))
    assert set(loaded) == {"train", "validation"}
    features = loaded["train"].features
    assert type(features["image"]).__name__ == "Array2D" and features["image"].shape == (400, 640)
    assert features["image"].dtype == "uint8" and features["label"].dtype == "uint8"
    assert features["spatial_weights"].dtype == "float32"
    assert type(features["dist_map"]).__name__ == "Array3D" and features["dist_map"].shape == (2, 400, 640)
    assert features["filename"].dtype == "string" and features["preprocessed"].dtype == "bool"
    root = require_data_root(raw_dir)
    for split in ("train", "validation"):
        rows = loaded[split].with_format("numpy")
        filenames = list(rows["filename"])
        assert filenames == sorted(filenames)
        for row in rows:
            stem = row["filename"]
            expected = preprocess_sample(
                read_image(root / split / "images" / f"{stem}.png"), read_label(root / split / "labels" / f"{stem}.npy")
            )
            assert row["preprocessed"]
            np.testing.assert_array_equal(row["image"], expected.image)
            np.testing.assert_array_equal(row["label"], expected.label)
            np.testing.assert_array_equal(row["spatial_weights"], expected.spatial_weights)
            np.testing.assert_array_equal(row["dist_map"], expected.dist_map)


def test_precompute_manifest_and_card_describe_the_shards(raw_dir, make_settings):
    settings = make_settings(raw_dir, shard_size=3)
    run_precompute(settings, download=False, progress=False)
    manifest = json.loads((settings.dataset.dir / "manifest.json").read_text())
    assert manifest["splits"]["train"]["rows"] == 8
    train_files = [s["file"] for s in manifest["splits"]["train"]["shards"]]
    assert train_files == [f"data/train-{i:05d}-of-00003.parquet" for i in range(3)]
    for split in ("train", "validation"):
        for shard in manifest["splits"][split]["shards"]:
            path = settings.dataset.dir / shard["file"]
            assert sha256_file(path) == shard["sha256"] and path.stat().st_size == shard["bytes"]
    assert manifest["skipped"] == []
    card = (settings.dataset.dir / "README.md").read_text()
    assert "path: data/train-*" in card and "| train | 8 | 3 |" in card and "gamma" in card


def test_precompute_is_byte_identical_across_runs_and_worker_counts(raw_dir, make_settings, tmp_path):
    first = make_settings(raw_dir, tmp_path / "a", shard_size=3, workers=1)
    second = make_settings(raw_dir, tmp_path / "b", shard_size=3, workers=2)
    run_precompute(first, download=False, progress=False)
    run_precompute(second, download=False, progress=False)
    assert _shard_bytes(first.dataset.dir) == _shard_bytes(second.dataset.dir)
    assert len(_shard_bytes(first.dataset.dir)) == 4


def test_worker_processes_get_the_settings_without_the_hub_token(raw_dir, make_settings, monkeypatch):
    settings = make_settings(raw_dir, shard_size=3, workers=2).updated(hub={"token": SecretStr("hf_never_to_workers")})
    sent = []
    monkeypatch.setattr(precompute, "run_in_processes", lambda job, tasks, *args, **kwargs: sent.append(job))
    precompute.run_shards(plan_shards(settings), settings)
    (job,) = sent
    given = job.keywords["settings"]
    assert given.hub.token is None and "hf_never_to_workers" not in repr(given.model_dump())
    assert given.dataset == settings.dataset and given.raw == settings.raw


def test_precompute_limit_applies_per_split_and_removes_stale_shards(raw_dir, make_settings):
    settings = make_settings(raw_dir, shard_size=2)
    run_precompute(settings, download=False, progress=False)
    assert len(list_shards(settings.dataset.dir)["train"]) == 4
    foreign = settings.dataset.dir / "data" / "test-00000-of-00001.parquet"
    foreign.write_bytes(b"not ours")
    limited = settings.updated(dataset={"limit": 3})
    report = run_precompute(limited, download=False, progress=False)
    assert report.rows == {"train": 3, "validation": 2}
    assert [p.name for p in list_shards(settings.dataset.dir)["train"]] == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    assert foreign.exists()  # shards of splits precompute does not write are left alone


def test_precompute_resumes_after_interruption_redoing_only_unfinished_shards(raw_dir, make_settings, tmp_path):
    settings = make_settings(raw_dir, shard_size=3)
    real_write = precompute.write_shard
    calls = []

    def interrupted(task, *args, **kwargs):
        calls.append(task.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_write(task, *args, **kwargs)

    with mock.patch.object(precompute, "write_shard", interrupted), pytest.raises(KeyboardInterrupt):
        run_precompute(settings, download=False, progress=False)
    # Only the finished shard is visible; nothing partial lies in data/.
    assert [p.name for ps in list_shards(settings.dataset.dir).values() for p in ps] == ["train-00000-of-00003.parquet"]
    report = run_precompute(settings, download=False, progress=False)
    assert report.resumed_shards == 1
    clean = make_settings(raw_dir, tmp_path / "clean", shard_size=3)
    run_precompute(clean, download=False, progress=False)
    assert _shard_bytes(settings.dataset.dir) == _shard_bytes(clean.dataset.dir)


def test_precompute_changed_input_is_not_resumed(raw_dir, make_settings):
    settings = make_settings(raw_dir, shard_size=4)
    run_precompute(settings, download=False, progress=False)
    root = require_data_root(raw_dir)
    label_path = sorted((root / "train" / "labels").glob("*.npy"))[0]
    label = np.load(label_path)
    label[:10, :10] = 3
    np.save(label_path, label.astype(np.uint8))  # different size: new fingerprint
    report = run_precompute(settings, download=False, progress=False)
    assert report.resumed_shards == 2  # the second train shard and validation


def test_precompute_survives_sigkill_and_resumes(raw_dir, tmp_path):
    output = tmp_path / "killed"
    command = [
        sys.executable, "-m", "visionassist_seg", "precompute", "--skip-download", "--no-push",
        "--raw-dir", str(raw_dir), "--output-dir", str(output), "--workers", "1", "--shard-size", "1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((output / "data").glob("*.parquet"))) < 2:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    import pyarrow.parquet as pq

    survivors = sorted((output / "data").glob("*.parquet"))
    assert survivors, "the run was killed before writing any shard"
    for path in survivors:  # every visible shard is complete and readable
        assert pq.ParquetFile(path).metadata.num_rows == 1
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert "reused from an earlier run" in finished.stdout
    assert len(list((output / "data").glob("*.parquet"))) == 10


def _break(root: Path, kind: str) -> str:
    """Break one train sample in the way ``kind`` names; return its stem."""
    images = sorted((root / "train" / "images").glob("*.png"))
    target = images[{"truncated": 0, "no_label": 1, "label_shape": 2, "label_values": 3, "image_size": 4}[kind]]
    label_path = root / "train" / "labels" / f"{target.stem}.npy"
    if kind == "truncated":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 3])
    elif kind == "no_label":
        label_path.unlink()
    elif kind == "label_shape":
        np.save(label_path, np.zeros((200, 640), np.uint8))
    elif kind == "label_values":
        label = np.load(label_path)
        label[5, 5] = 7
        np.save(label_path, label)
    elif kind == "image_size":
        cv2.imwrite(str(target), np.zeros((200, 320), np.uint8))
    return target.stem


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated", "unreadable or truncated"),
        ("no_label", "label file is missing"),
        ("label_shape", "label shape is (200, 640)"),
        ("label_values", "label values span 0..7"),
        ("image_size", "image shape is 200x320"),
    ],
)
def test_precompute_skips_bad_sample_and_records_it(raw_dir, make_settings, kind, reason):
    stem = _break(require_data_root(raw_dir), kind)
    settings = make_settings(raw_dir)
    report = run_precompute(settings, download=False, progress=False)
    assert report.rows["train"] == 7
    assert len(report.skipped) == 1
    skipped = report.skipped[0]
    assert skipped["split"] == "train" and stem in skipped["file"] and reason in skipped["reason"]
    manifest = json.loads((settings.dataset.dir / "manifest.json").read_text())
    assert manifest["skipped"] == report.skipped


def test_precompute_all_bad_shard_is_empty_but_valid(raw_dir, make_settings):
    import pyarrow.parquet as pq

    root = require_data_root(raw_dir)
    for label in (root / "validation" / "labels").glob("*.npy"):
        np.save(label, np.full((400, 640), 9, np.uint8))
    settings = make_settings(raw_dir)
    report = run_precompute(settings, download=False, progress=False)
    assert report.rows["validation"] == 0 and len(report.skipped) == 2
    shard = list_shards(settings.dataset.dir)["validation"][0]
    assert pq.ParquetFile(shard).metadata.num_rows == 0


def test_plan_shards_missing_or_empty_raw_dir_is_a_clear_error(tmp_path, make_settings):
    with pytest.raises(VasegError, match="does not exist.*vaseg download"):
        plan_shards(make_settings(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(VasegError, match="No OpenEDS tree in"):
        plan_shards(make_settings(tmp_path / "empty"))


def test_plan_shards_requires_labelled_validation(raw_dir, make_settings):
    root = require_data_root(raw_dir)
    for label in (root / "validation" / "labels").glob("*.npy"):
        label.unlink()
    with pytest.raises(VasegError, match="Split 'validation' has no labelled images"):
        plan_shards(make_settings(raw_dir))


def test_precompute_downloads_synthetic_source_when_raw_is_missing(tmp_path, make_settings):
    settings = make_settings(tmp_path / "fresh_raw", synthetic_count=4)
    report = run_precompute(settings, download=True, progress=False)
    assert report.rows == {"train": 4, "validation": 1}


def _rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """Replace ``path``'s content with ``data`` (same length) and put its old mtime back."""
    before = path.stat()
    assert len(data) == before.st_size
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_precompute_fixed_label_of_the_same_size_and_mtime_is_not_resumed(raw_dir, make_settings):
    import pyarrow.parquet as pq

    settings = make_settings(raw_dir, shard_size=4)
    run_precompute(settings, download=False, progress=False)
    root = require_data_root(raw_dir)
    label_path = sorted((root / "train" / "labels").glob("*.npy"))[0]
    fixed = np.load(label_path)
    fixed[:10, :10] = 3  # a label fix: same shape and dtype, so the same file size
    buffer = __import__("io").BytesIO()
    np.save(buffer, fixed)
    _rewrite_keeping_size_and_mtime(label_path, buffer.getvalue())
    report = run_precompute(settings, download=False, progress=False)
    assert report.resumed_shards == 2  # the second train shard and validation; the fixed one is redone
    table = pq.read_table(settings.dataset.dir / "data" / "train-00000-of-00002.parquet", columns=["label", "filename"])
    first = np.asarray(table["label"][0].as_py(), dtype=np.uint8)
    assert table["filename"][0].as_py() == label_path.stem
    np.testing.assert_array_equal(first, (fixed == 3).astype(np.uint8))


def test_precompute_fingerprint_hashes_content_not_names_and_sizes(raw_dir, make_settings):
    settings = make_settings(raw_dir, shard_size=4)
    task = plan_shards(settings)[0]
    before = precompute.task_fingerprint(task, settings)
    image = task.samples[1].image
    data = bytearray(image.read_bytes())
    data[-20] ^= 0xFF  # one flipped byte inside the PNG's last chunk
    _rewrite_keeping_size_and_mtime(image, bytes(data))
    assert precompute.task_fingerprint(task, settings) != before


def test_precompute_fingerprint_recorded_is_the_one_a_rerun_computes(raw_dir, make_settings):
    # The record is made from the bytes processed while writing; a rerun hashes the files: they must agree.
    settings = make_settings(raw_dir, shard_size=4)
    run_precompute(settings, download=False, progress=False)
    for task in plan_shards(settings):
        record = json.loads((settings.dataset.dir / ".vaseg" / "shards" / f"{task.name}.json").read_text())
        assert record["fingerprint"] == precompute.task_fingerprint(task, settings)


def _forge_png(path: Path, width: int, height: int) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _make_bad_raw(root: Path, kind: str) -> str:
    """Add or break one train sample in the way ``kind`` names; return the text its skip entry must hold."""
    images, labels = root / "train" / "images", root / "train" / "labels"
    first = sorted(images.glob("*.png"))[0]
    if kind == "huge_label_header":
        with open(labels / f"{first.stem}.npy", "wb") as handle:
            np.lib.format.write_array_header_1_0(handle, {"descr": "<i8", "fortran_order": False, "shape": (700_000, 700_000)})
            handle.write(b"\0" * 128)
        return "claims shape (700000, 700000)"
    if kind == "huge_png":
        _forge_png(first, 30000, 30000)
        return "image header says 30000x30000 pixels"
    if kind == "non_utf8_name":
        for folder, suffix, source in ((images, b".png", first), (labels, b".npy", labels / f"{first.stem}.npy")):
            with open(os.fsencode(folder) + b"/eye\xff" + suffix, "wb") as handle:
                handle.write(source.read_bytes())
        return "'eye\\xff' is not valid UTF-8"
    if kind == "duplicate_stem":
        (images / f"{first.stem}.PNG").write_bytes(first.read_bytes())
        return f"2 images share the stem '{first.stem}'"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["huge_label_header", "huge_png", "non_utf8_name", "duplicate_stem"])
def test_precompute_bad_raw_file_is_skipped_and_listed_not_fatal(raw_dir, make_settings, kind):
    reason = _make_bad_raw(require_data_root(raw_dir), kind)
    settings = make_settings(raw_dir)
    report = run_precompute(settings, download=False, progress=False)
    assert [reason in item["reason"] for item in report.skipped] == [True]
    assert report.rows["train"] == (8 if kind == "non_utf8_name" else 7)  # the other samples are all there (that kind adds one)
    manifest = json.loads((settings.dataset.dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["skipped"] == report.skipped


def test_precompute_pairs_upper_case_extensions(raw_dir, make_settings):
    root = require_data_root(raw_dir)
    for folder, suffix in (("images", ".png"), ("labels", ".npy")):
        path = sorted((root / "train" / folder).glob(f"*{suffix}"))[0]
        path.rename(path.with_suffix(suffix.upper()))
    settings = make_settings(raw_dir)
    report = run_precompute(settings, download=False, progress=False)
    assert report.skipped == [] and report.rows["train"] == 8
    from visionassist_seg.validate import validate_dataset

    # validate's recomputation finds the raw files the same way precompute paired them
    checked = validate_dataset(dataset_dir=settings.dataset.dir, raw_dir=raw_dir, all_rows=True)
    assert checked.passed, [(row.check, row.result) for row in checked.rows]
