"""The built-in synthetic OpenEDS generator."""

from __future__ import annotations

import numpy as np

from visionassist_seg.data.raw import find_data_root, is_complete, list_split
from visionassist_seg.data.synthetic import make_sample, write_synthetic_raw


def test_synthetic_layout_matches_kaggle(tmp_path):
    root = write_synthetic_raw(tmp_path, 8, seed=3)
    assert root == tmp_path / "openEDS" / "openEDS"
    assert find_data_root(tmp_path) == root and is_complete(tmp_path)
    assert len(list(root.glob("train/images/*.png"))) == 8
    assert len(list(root.glob("validation/labels/*.npy"))) == 2
    assert not (root / "test" / "labels").exists() and len(list(root.glob("test/images/*.png"))) == 2
    assert not list(tmp_path.rglob("*.tmp"))
    assert all(s.label is not None for s in list_split(root, "train"))


def test_synthetic_is_deterministic_per_seed():
    a_image, a_label = make_sample(7, "train", 5)
    b_image, b_label = make_sample(7, "train", 5)
    c_image, _ = make_sample(8, "train", 5)
    np.testing.assert_array_equal(a_image, b_image)
    np.testing.assert_array_equal(a_label, b_label)
    assert not np.array_equal(a_image, c_image)


def test_synthetic_samples_look_like_openeds():
    labels = [make_sample(0, "train", i)[1] for i in range(200)]
    image = make_sample(0, "train", 0)[0]
    assert image.shape == (400, 640) and image.dtype == np.uint8 and image.std() > 10
    for label in labels:
        assert label.shape == (400, 640) and set(np.unique(label)) <= {0, 1, 2, 3}
    pupils = [label == 3 for label in labels]
    assert sum(1 for p in pupils if not p.any()) >= 3, "some closed eyes"
    at_border = sum(1 for p in pupils if p.any() and (p[:, 0].any() or p[:, -1].any()))
    assert at_border >= 3, "some pupils cut by the image border"
    assert sum(1 for label in labels if {1, 2, 3} <= set(np.unique(label))) > 150
