"""Raw OpenEDS layout: root probing, pairing by stem, image and label reading."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from visionassist_seg.data.raw import find_data_root, list_split, read_image, read_label


@pytest.mark.parametrize("nesting", [".", "openEDS", "openEDS/openEDS"])
def test_find_data_root_probes_kaggle_nesting(tmp_path, nesting):
    root = tmp_path / nesting
    (root / "train" / "images").mkdir(parents=True)
    assert find_data_root(tmp_path) == root


def test_find_data_root_none_without_train_images(tmp_path):
    assert find_data_root(tmp_path) is None


def test_list_split_pairs_by_stem_and_sorts(tmp_path):
    images, labels = tmp_path / "train" / "images", tmp_path / "train" / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for stem in ("b", "a", "c"):
        (images / f"{stem}.png").write_bytes(b"")
    np.save(labels / "a.npy", np.zeros((2, 2), np.uint8))
    np.save(labels / "z.npy", np.zeros((2, 2), np.uint8))
    samples = list_split(tmp_path, "train")
    assert [s.stem for s in samples] == ["a", "b", "c", "z"]
    assert samples[0].label is not None and samples[1].label is None
    assert not samples[3].image.exists()  # a label without its image is listed, to be reported


def test_read_image_converts_colour_to_gray(tmp_path):
    gray = np.random.default_rng(0).integers(0, 255, (40, 64), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    np.testing.assert_array_equal(read_image(tmp_path / "c.png"), gray)


@pytest.mark.parametrize("content", [b"", b"not a png at all"])
def test_read_image_rejects_unreadable(tmp_path, content):
    (tmp_path / "x.png").write_bytes(content)
    with pytest.raises(ValueError, match="unreadable"):
        read_image(tmp_path / "x.png")


def test_read_label_rejects_missing_and_corrupt(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        read_label(None)
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="not a readable .npy"):
        read_label(tmp_path / "bad.npy")
