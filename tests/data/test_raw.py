"""Raw OpenEDS layout: root probing, pairing by stem, image and label reading."""

from __future__ import annotations

import os
from unittest import mock

import cv2
import numpy as np
import pytest

from visionassist_seg.data.raw import find_data_root, has_labels, list_split, read_image, read_label


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


def _npy_with_header(path, shape, data: bytes = b"\0" * 64, descr: str = "<i8") -> None:
    """Write a .npy file whose header claims ``shape`` but holds only ``data``."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": descr, "fortran_order": False, "shape": shape})
        handle.write(data)


def _png_claiming(path, width: int, height: int) -> None:
    """Write a PNG whose IHDR says ``width`` x ``height`` 8-bit gray (the image data itself is a stub)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))


def test_read_label_refuses_a_huge_header_shape_before_allocating(tmp_path):
    # 10^6 x 10^6 int64 is 7.3 TiB: numpy would try to allocate it before noticing the file is 64 bytes.
    _npy_with_header(tmp_path / "huge.npy", (1_000_000, 1_000_000))
    with mock.patch("numpy.load", side_effect=AssertionError("np.load reached")):
        with pytest.raises(ValueError, match=r"claims shape \(1000000, 1000000\) int64 \(7\.28 TiB\) but the file holds 64 bytes"):
            read_label(tmp_path / "huge.npy")


def test_read_label_refuses_a_header_that_disagrees_with_the_file(tmp_path):
    _npy_with_header(tmp_path / "short.npy", (400, 640), data=b"\0" * 100, descr="|u1")
    with pytest.raises(ValueError, match=r"claims shape \(400, 640\) uint8 .* holds 100 bytes"):
        read_label(tmp_path / "short.npy")


def test_read_label_reads_fortran_order_and_any_integer_dtype(tmp_path):
    label = np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4))
    np.save(tmp_path / "f.npy", label)
    np.testing.assert_array_equal(read_label(tmp_path / "f.npy"), label)


def test_read_image_rejects_a_huge_png_from_its_header_without_decoding(tmp_path):
    _png_claiming(tmp_path / "huge.png", 30000, 30000)
    with mock.patch("cv2.imdecode", side_effect=AssertionError("decoded")):
        with pytest.raises(ValueError, match="image header says 30000x30000 pixels"):
            read_image(tmp_path / "huge.png")


def test_read_image_rejects_16_bit_from_its_header(tmp_path):
    cv2.imwrite(str(tmp_path / "deep.png"), np.zeros((4, 4), np.uint16))
    with pytest.raises(ValueError, match="16 bits per channel"):
        read_image(tmp_path / "deep.png")


def _split_dir(tmp_path):
    images, labels = tmp_path / "train" / "images", tmp_path / "train" / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    return images, labels


def test_list_split_pairs_extensions_in_any_case(tmp_path):
    images, labels = _split_dir(tmp_path)
    (images / "x.PNG").write_bytes(b"")
    np.save(labels / "tmp.npy", np.zeros((2, 2), np.uint8))
    (labels / "tmp.npy").rename(labels / "x.NPY")
    samples = list_split(tmp_path, "train")
    assert [(s.stem, s.image.name, s.label.name if s.label else None, s.problem) for s in samples] == [
        ("x", "x.PNG", "x.NPY", None)
    ]
    assert has_labels(tmp_path, "train")


def test_list_split_reports_two_images_with_one_stem_as_one_problem_sample(tmp_path):
    images, labels = _split_dir(tmp_path)
    (images / "x.png").write_bytes(b"")
    (images / "x.PNG").write_bytes(b"")
    np.save(labels / "x.npy", np.zeros((2, 2), np.uint8))
    samples = list_split(tmp_path, "train")
    assert len(samples) == 1
    assert samples[0].problem == "2 images share the stem 'x' (x.PNG, x.png): rename or remove all but one"


def test_list_split_flags_a_file_name_that_is_not_utf8(tmp_path):
    images, labels = _split_dir(tmp_path)
    name = os.fsencode(images) + b"/bad\xffname.png"
    with open(name, "wb") as handle:  # a bytes path: Linux file names need not be UTF-8
        handle.write(b"")
    from visionassist_seg.data.raw import display_name

    (sample,) = list_split(tmp_path, "train")
    assert sample.problem is not None and "'bad\\xffname' is not valid UTF-8" in sample.problem
    assert display_name(sample.image.name) == "bad\\xffname.png"


def test_find_raw_files_matches_extensions_in_any_case(tmp_path):
    from visionassist_seg.data.raw import find_raw_files

    images, labels = _split_dir(tmp_path)
    (images / "a.PNG").write_bytes(b"")
    (labels / "a.Npy").write_bytes(b"")
    (images / "b.png").write_bytes(b"")
    split = tmp_path / "train"
    assert find_raw_files(split, "a") == (images / "a.PNG", labels / "a.Npy")
    assert find_raw_files(split, "b") == (images / "b.png", labels / "b.npy")  # missing label: the name to report
