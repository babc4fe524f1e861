import numpy as np
import pytest
import torch

from visionassist_seg.errors import VasegError
from visionassist_seg.ops import enhance_image
from visionassist_seg.train.augment import Sample
from visionassist_seg.train.loader import (
    BatchLoader,
    BlockDataset,
    copy_into,
    ParquetReader,
    index_dataset,
    iterate_batches,
    prepare_sample,
    scaled_size,
)


def _all(dataset, epoch=0, workers=0):
    return list(iterate_batches(dataset, epoch, workers))


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
    dataset = BlockDataset(index_dataset(tiny_dataset)["train"], 3, train=True, seed=1)
    batches = _all(dataset)
    assert [len(b["image"]) for b in batches] == dataset.batch_sizes()
    assert sum(dataset.batch_sizes()) == 8
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
    single = _all(BlockDataset(index, 4, train=True, seed=3), epoch=2, workers=0)
    multi = _all(BlockDataset(index, 4, train=True, seed=3), epoch=2, workers=2)
    for a, b in zip(single, multi, strict=True):
        for name in a:
            assert torch.equal(a[name], b[name])
    other_epoch = _all(BlockDataset(index, 4, train=True, seed=3), epoch=3)
    assert any(not torch.equal(a["image"], b["image"]) for a, b in zip(single, other_epoch))


def test_validation_batches_are_unaugmented_and_in_order(tiny_dataset):
    index = index_dataset(tiny_dataset)["validation"]
    batches = _all(BlockDataset(index, 4, train=False))
    stored = ParquetReader().read(index.slices[0])
    np.testing.assert_array_equal(batches[0]["image"][:, 0].numpy(), stored["image"])
    np.testing.assert_array_equal(batches[0]["dist_map"].numpy(), stored["dist_map"])


def test_scale_resizes_every_array_consistently(tiny_dataset):
    index = index_dataset(tiny_dataset)["validation"]
    batch = _all(BlockDataset(index, 4, train=False, scale=0.25, full_labels=True))[0]
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
    batch = _all(BlockDataset(legacy["train"], 4, train=False))[0]
    # the legacy raw images, enhanced at load time, equal the precomputed images
    np.testing.assert_array_equal(batch["image"][:, 0].numpy(), new["image"][:4])
    np.testing.assert_array_equal(enhance_image(old["image"][0]), new["image"][0])


def _cloned(dataset, epoch=0, workers=0, **options):
    """Consume batches one at a time, copying each before asking for the next (as training does)."""
    return [{k: v.clone() for k, v in batch.items()} for batch in iterate_batches(dataset, epoch, workers, **options)]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("name", ["tiny_dataset", "shard_dataset"])
def test_reused_ring_buffers_give_the_same_batches(request, name, workers):
    index = index_dataset(request.getfixturevalue(name))["train"]
    fresh = _all(BlockDataset(index, 3, train=True, seed=5), epoch=1, workers=workers)
    dataset = BlockDataset(index, 3, train=True, seed=5)
    with BatchLoader(dataset, workers, reuse_buffers=True) as loader:
        for epoch in (0, 1):  # the second epoch reuses the workers and ring of the first
            reused = [{k: v.clone() for k, v in batch.items()} for batch in loader.epoch(epoch)]
        assert dataset.ring is not None and dataset.ring.regions == max(1, workers)
    assert dataset.ring is None
    for a, b in zip(fresh, reused, strict=True):
        for name in a:
            assert torch.equal(a[name], b[name]), name


def test_ring_slots_are_reused_so_a_kept_batch_is_overwritten(tiny_dataset):
    index = index_dataset(tiny_dataset)["train"]
    batches = list(iterate_batches(BlockDataset(index, 2, train=True, seed=0), 0, 0, reuse_buffers=True))
    # Documented contract: a batch is valid until the next is requested; kept ones alias the ring.
    assert batches[0]["dist_map"].data_ptr() == batches[-2]["dist_map"].data_ptr()


def test_ring_is_off_with_pinned_memory(tiny_dataset):
    dataset = BlockDataset(index_dataset(tiny_dataset)["validation"], 4, train=False)
    _all_pinned = list(iterate_batches(dataset, 0, 0, pin_memory=False, reuse_buffers=False))
    assert dataset.ring is None and len(_all_pinned) == 1


@pytest.mark.parametrize(("train", "scale"), [(True, 1.0), (True, 0.5), (False, 0.5)])
def test_page_per_row_decoding_equals_the_pyarrow_path(shard_dataset, train, scale):
    index = index_dataset(shard_dataset)["train"]
    reader = ParquetReader()
    assert all(reader.row_pages(piece) is not None for piece in index.slices)  # vaseg shards: one page per row
    direct = _all(BlockDataset(index, 4, train=train, seed=2, scale=scale, full_labels=True), epoch=1)
    fallback_dataset = BlockDataset(index, 4, train=train, seed=2, scale=scale, full_labels=True)
    fallback_dataset._reader = ParquetReader(direct=False)
    assert all(fallback_dataset._reader.row_pages(piece) is None for piece in index.slices)
    fallback = _all(fallback_dataset, epoch=1)
    for a, b in zip(direct, fallback, strict=True):
        for name in a:
            assert torch.equal(a[name], b[name]), name
    full = _all(BlockDataset(index, 8, train=False))[0]
    stored = ParquetReader(direct=False).read(index.slices[0])
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


def test_an_unfinished_epoch_stops_the_workers_and_the_next_epoch_is_whole(shard_dataset):
    index = index_dataset(shard_dataset)["train"]
    expected = _all(BlockDataset(index, 2, train=True, seed=4), epoch=1)
    dataset = BlockDataset(index, 2, train=True, seed=4)
    with BatchLoader(dataset, 2, reuse_buffers=True) as loader:
        for batch in loader.epoch(0):
            break  # the generator is closed here: workers stop, the ring is dropped
        assert dataset.ring is None and loader._loader is None
        again = [{k: v.clone() for k, v in batch.items()} for batch in loader.epoch(1)]
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


def test_workers_wait_for_released_slots_when_blocks_outnumber_them(tmp_path):
    from train_fixtures import make_rows, write_vaseg_split

    # Row groups of one row and evaluation batches of one: 8 blocks, 4 per worker, more than its 3 slots.
    write_vaseg_split(tmp_path / "data" / "train-00000-of-00001.parquet", make_rows(8, 7), row_group_size=1)
    write_vaseg_split(tmp_path / "data" / "validation-00000-of-00001.parquet", make_rows(1, 8), row_group_size=1)
    index = index_dataset(tmp_path)["train"]
    expected = _all(BlockDataset(index, 1, train=False), epoch=0)
    dataset = BlockDataset(index, 1, train=False)
    with BatchLoader(dataset, 2, reuse_buffers=True) as loader:
        got = [{k: v.clone() for k, v in batch.items()} for batch in loader.epoch(0)]
        assert len(dataset.blocks) == 8 and dataset.ring.slots == 3
        assert dataset.ring.released.tolist() == [4, 4]
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
