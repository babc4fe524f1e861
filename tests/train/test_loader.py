import numpy as np
import pytest
import torch

from visionassist_seg.errors import VasegError
from visionassist_seg.ops import enhance_image
from visionassist_seg.train.augment import Sample
from visionassist_seg.train.loader import (
    BlockDataset,
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
