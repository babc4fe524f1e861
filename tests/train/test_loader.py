import numpy as np
import pytest
import torch

from visionassist_seg.errors import VasegError
from visionassist_seg.ops import enhance_image
from visionassist_seg.train.augment import Sample
from visionassist_seg.train.loader import EpochSampler, PupilDataset, copy_into, make_loader, scaled_size
from visionassist_seg.train.samples import prepare_sample
from visionassist_seg.train.rows import ParquetReader
from visionassist_seg.train.split_index import index_dataset


def _all(dataset, batch_size, epoch=0, workers=0):
    loader = make_loader(dataset, batch_size, workers)
    loader.sampler.set_epoch(epoch)
    return list(loader)


def test_index_counts_rows_and_applies_limit(tiny_dataset):
    indexes = index_dataset(tiny_dataset)
    assert indexes["train"].rows == 8 and indexes["validation"].rows == 4
    assert index_dataset(tiny_dataset, limit=5)["train"].rows == 5
    assert not indexes["train"].legacy_shards


def test_missing_split_is_a_clear_error(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(VasegError, match="No train shards"):
        index_dataset(tmp_path)


def test_batches_have_schema_dtypes_and_cover_each_row_once(tiny_dataset):
    dataset = PupilDataset(index_dataset(tiny_dataset)["train"], train=True, seed=1)
    batches = _all(dataset, 3)
    assert [len(b["image"]) for b in batches] == [3, 3, 2]
    first = batches[0]
    assert first["image"].dtype == torch.uint8 and first["image"].shape[1:] == (1, 400, 640)
    assert first["label"].dtype == torch.uint8 and first["spatial_weights"].dtype == torch.float32
    assert first["dist_map"].shape[1:] == (2, 400, 640)
    # every row once: the multiset of pupil sizes is the same as in the file (flips keep the size)
    reader = ParquetReader()
    stored = sorted(int(l.sum()) for piece in dataset.index.slices for l in reader.read(piece)["label"])
    seen = sorted(int(l.sum()) for b in batches for l in b["label"])
    assert seen == stored


def test_epoch_plan_depends_on_seed_and_epoch_not_on_workers(tiny_dataset):
    index = index_dataset(tiny_dataset)["train"]
    single = _all(PupilDataset(index, train=True, seed=3), 4, epoch=2, workers=0)
    multi = _all(PupilDataset(index, train=True, seed=3), 4, epoch=2, workers=2)
    for a, b in zip(single, multi, strict=True):
        for name in a:
            assert torch.equal(a[name], b[name])
    other_epoch = _all(PupilDataset(index, train=True, seed=3), 4, epoch=3)
    assert any(not torch.equal(a["image"], b["image"]) for a, b in zip(single, other_epoch))


def test_validation_batches_are_unaugmented_and_in_order(tiny_dataset):
    index = index_dataset(tiny_dataset)["validation"]
    batches = _all(PupilDataset(index, train=False), 4)
    stored = ParquetReader().read(index.slices[0])
    np.testing.assert_array_equal(batches[0]["image"][:, 0].numpy(), stored["image"])
    np.testing.assert_array_equal(batches[0]["dist_map"].numpy(), stored["dist_map"])


def test_scale_resizes_every_array_consistently(tiny_dataset):
    index = index_dataset(tiny_dataset)["validation"]
    batch = _all(PupilDataset(index, train=False, scale=0.25, full_labels=True), 4)[0]
    assert scaled_size(0.25) == (100, 160)
    assert batch["image"].shape[2:] == (100, 160) and batch["label"].shape[1:] == (100, 160)
    assert batch["spatial_weights"].shape[1:] == (100, 160) and batch["dist_map"].shape[2:] == (100, 160)
    assert batch["label_full"].shape[1:] == (400, 640)
    label = batch["label"].numpy().astype(bool)
    # pupil pixels lie inside the pupil in the distance map, background pixels outside
    assert (batch["dist_map"][:, 1].numpy()[label] <= 0.01).all()
    assert (batch["dist_map"][:, 1].numpy()[~label] > -0.01).all()
    weights = batch["spatial_weights"].numpy()
    assert weights.min() >= 0 and weights.max() <= 20 and weights.max() > 0
    assert abs(label.mean() - batch["label_full"].numpy().mean()) < 0.002


def test_scaled_label_is_centred_on_the_pupil():
    label = np.zeros((400, 640), np.uint8)
    label[100:140, 200:240] = 1  # a 40x40 square: 10x10 at scale 0.25, at rows/cols 25..34 / 50..59
    zeros = np.zeros((400, 640), np.float32)
    small = prepare_sample(Sample(label * 0, label, zeros, np.stack([zeros, zeros])), False, (100, 160)).label
    rows, cols = np.nonzero(small)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (25, 34, 50, 59)


def test_prepare_sample_keeps_full_size_arrays_untouched():
    sample = Sample(np.zeros((400, 640), np.uint8), np.zeros((400, 640), np.uint8), np.zeros((400, 640), np.float32), np.zeros((2, 400, 640), np.float32))
    out = prepare_sample(sample, False, (400, 640))
    assert out.image is sample.image and out.dist_map is sample.dist_map


def test_legacy_rows_are_reshaped_cast_and_enhanced(tiny_dataset, legacy_dataset, capsys):
    legacy = index_dataset(legacy_dataset)
    assert legacy["train"].legacy_shards
    current = index_dataset(tiny_dataset)
    old = ParquetReader().read(legacy["train"].slices[0])
    new = ParquetReader().read(current["train"].slices[0])
    assert old["enhance"].all() and not new["enhance"].any()
    assert old["image"].dtype == np.uint8 and old["dist_map"].dtype == np.float32
    np.testing.assert_array_equal(old["label"], new["label"])
    batch = _all(PupilDataset(legacy["train"], train=False), 4)[0]
    # the legacy raw images, enhanced at load time, equal the precomputed images
    np.testing.assert_array_equal(batch["image"][:, 0].numpy(), new["image"][:4])
    np.testing.assert_array_equal(enhance_image(old["image"][0]), new["image"][0])


@pytest.mark.parametrize("name", ["tiny_dataset", "shard_dataset"])
def test_persistent_workers_give_the_same_batches_every_epoch(request, name):
    index = index_dataset(request.getfixturevalue(name))["train"]
    fresh = [_all(PupilDataset(index, train=True, seed=5), 3, epoch=epoch) for epoch in (0, 1)]
    loader = make_loader(PupilDataset(index, train=True, seed=5), 3, 2)
    for epoch in (0, 1):  # the second epoch reuses the workers of the first
        loader.sampler.set_epoch(epoch)
        for a, b in zip(fresh[epoch], loader, strict=True):
            for column in a:
                assert torch.equal(a[column], b[column]), column


def test_training_windows_shuffle_every_row_once_and_evaluation_keeps_order(tmp_path):
    from train_fixtures import make_rows, write_vaseg_split

    write_vaseg_split(tmp_path / "data" / "train-00000-of-00001.parquet", make_rows(7, 7), row_group_size=2)
    write_vaseg_split(tmp_path / "data" / "validation-00000-of-00001.parquet", make_rows(1, 8), row_group_size=1)
    index = index_dataset(tmp_path)["train"]
    shuffled = EpochSampler(index, shuffle=True, seed=0, window_rows=3)
    orders = []
    for epoch in (0, 1):
        shuffled.set_epoch(epoch)
        keys = list(shuffled)
        assert {e for e, _ in keys} == {epoch} and sorted(r for _, r in keys) == list(range(7))
        orders.append([r for _, r in keys])
    assert orders[0] != orders[1]
    # windows of whole slices (rows 0-1, 2-3, 4-5, 6): each window's rows come out together
    first_window = {r // 2 for r in orders[0][:4]}
    assert len(first_window) == 2
    assert [r for _, r in EpochSampler(index, shuffle=False, seed=0, window_rows=3)] == list(range(7))


@pytest.mark.parametrize(("train", "scale"), [(True, 1.0), (True, 0.5), (False, 0.5)])
def test_page_per_row_decoding_equals_the_pyarrow_path(shard_dataset, train, scale, monkeypatch):
    index = index_dataset(shard_dataset)["train"]
    reader = ParquetReader()
    assert all(reader.row_pages(piece) is not None for piece in index.slices)  # vaseg shards: one page per row
    direct = _all(PupilDataset(index, train=train, seed=2, scale=scale, full_labels=True), 4, epoch=1)
    fallback_dataset = PupilDataset(index, train=train, seed=2, scale=scale, full_labels=True)
    fallback_dataset._reader = ParquetReader()
    # Whole slices through pyarrow, as for another writer's shards.
    monkeypatch.setattr(ParquetReader, "row_pages", lambda self, piece: None)
    monkeypatch.setattr(ParquetReader, "read", ParquetReader.read_with_pyarrow)
    assert all(fallback_dataset._reader.row_pages(piece) is None for piece in index.slices)
    fallback = _all(fallback_dataset, 4, epoch=1)
    assert not fallback_dataset._reader._direct  # the direct chunk decoder never ran
    for a, b in zip(direct, fallback, strict=True):
        for name in a:
            assert torch.equal(a[name], b[name]), name
    full = _all(PupilDataset(index, train=False), 8)[0]
    stored = ParquetReader().read_with_pyarrow(index.slices[0])
    for name in ("image", "label", "spatial_weights", "dist_map"):
        np.testing.assert_array_equal(full[name].numpy()[:4].reshape(stored[name].shape), stored[name])


def test_copy_into_handles_mirrored_views_and_casts():
    rng = np.random.default_rng(0)
    src = rng.random((5, 7)).astype(np.float32)
    dst = np.empty_like(src)
    copy_into(dst, src[:, ::-1])
    np.testing.assert_array_equal(dst, src[:, ::-1])
    small = np.empty((5, 7), np.uint8)
    copy_into(small, (src * 100).astype(np.int32))
    np.testing.assert_array_equal(small, (src * 100).astype(np.uint8))


def test_an_unfinished_epoch_leaves_the_next_epoch_whole(shard_dataset):
    index = index_dataset(shard_dataset)["train"]
    expected = _all(PupilDataset(index, train=True, seed=4), 2, epoch=1)
    loader = make_loader(PupilDataset(index, train=True, seed=4), 2, 2)
    for batch in loader:
        break  # epoch 0 left after one batch: the persistent workers still hold its prefetched batches
    loader.sampler.set_epoch(1)
    again = list(loader)
    assert len(again) == len(expected)
    for a, b in zip(expected, again, strict=True):
        for name in a:
            assert torch.equal(a[name], b[name]), name


def test_copy_into_mirrors_in_place_and_skips_self_copies():
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.uint8):
        data = (rng.random((6, 9)) * 200).astype(dtype)
        expected = data[:, ::-1].copy()
        copy_into(data, data[:, ::-1])  # a mirrored view of the destination itself
        np.testing.assert_array_equal(data, expected)
        before = data.copy()
        copy_into(data, data)
        np.testing.assert_array_equal(data, before)


def test_small_row_groups_read_through_workers_in_order(tmp_path):
    from train_fixtures import make_rows, write_vaseg_split

    # Row groups of one row and evaluation batches of one: more batches than workers prefetch.
    write_vaseg_split(tmp_path / "data" / "train-00000-of-00001.parquet", make_rows(8, 7), row_group_size=1)
    write_vaseg_split(tmp_path / "data" / "validation-00000-of-00001.parquet", make_rows(1, 8), row_group_size=1)
    index = index_dataset(tmp_path)["train"]
    expected = _all(PupilDataset(index, train=False), 1)
    got = _all(PupilDataset(index, train=False), 1, workers=2)
    assert len(got) == len(expected) == 8
    for a, b in zip(expected, got, strict=True):
        for name in a:
            assert torch.equal(a[name], b[name]), name


# --- the index: every layout datasets accepts, and incomplete or empty datasets ----------


@pytest.mark.parametrize("layout", ["seed", "vaseg", "configs"])
def test_index_reads_every_layout_datasets_accepts(tmp_path, layout):
    from layout_fixtures import eye_rows, relative_files, write_layout

    legacy = layout == "seed"
    rows = {"train": eye_rows(6, 0, "train", legacy=legacy), "validation": eye_rows(2, 0, "validation", legacy=legacy)}
    indexes = index_dataset(write_layout(tmp_path, layout, rows))
    assert indexes["train"].rows == 6 and indexes["validation"].rows == 2
    assert sorted({s.path for s in indexes["train"].slices}) == [str(tmp_path / f) for f in relative_files(layout, "train", 2)]
    assert bool(indexes["train"].legacy_shards) == legacy


def _copy(dataset, tmp_path):
    import shutil

    return shutil.copytree(dataset, tmp_path / "dataset")


def test_a_deleted_shard_is_named_instead_of_training_on_the_rest(shard_dataset, tmp_path):
    from train_fixtures import make_rows, write_vaseg_split

    dataset = _copy(shard_dataset, tmp_path)
    (dataset / "data" / "train-00000-of-00001.parquet").rename(dataset / "data" / "train-00000-of-00003.parquet")
    write_vaseg_split(dataset / "data" / "train-00002-of-00003.parquet", make_rows(2, 3))
    with pytest.raises(VasegError, match=r"incomplete: .*1 of 3 shards missing \(data/train-00001-of-00003\.parquet\)"):
        index_dataset(dataset)


def test_a_shard_listed_in_the_manifest_but_gone_is_named(tmp_path):
    import json

    from layout_fixtures import eye_rows, write_layout

    rows = {"train": eye_rows(6, 0, "train", legacy=True), "validation": eye_rows(2, 0, "validation", legacy=True)}
    dataset = write_layout(tmp_path, "seed", rows)
    listed = [{"file": f"data/train/shard_{i:05d}.parquet", "rows": 4, "sha256": ""} for i in range(3)]
    (dataset / "manifest.json").write_text(json.dumps({"splits": {"train": {"rows": 12, "shards": listed}}}))
    with pytest.raises(VasegError, match=r"manifest.json lists data/train/shard_00002.parquet, which is missing"):
        index_dataset(dataset)


def test_a_validation_split_without_rows_is_a_clear_error(tmp_path):
    from layout_fixtures import eye_rows, write_layout

    dataset = write_layout(tmp_path, "vaseg", {"train": eye_rows(2, 0, "train"), "validation": []})
    with pytest.raises(VasegError, match="The validation split of .* has 0 rows"):
        index_dataset(dataset)
