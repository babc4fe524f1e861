"""The raw OpenEDS tree: locating its root, listing samples, reading image/label files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionassist_seg.errors import VasegError

RAW_SPLITS = ("train", "validation", "test")
_ROOT_CANDIDATES = (".", "openEDS", "openEDS/openEDS")


@dataclass(frozen=True)
class RawSample:
    """One raw image and its label file (``label`` is None when the image has no label)."""

    split: str
    stem: str
    image: Path
    label: Path | None


def find_data_root(raw_dir: Path) -> Path | None:
    """Return the folder under ``raw_dir`` that holds ``train/images`` (probing the Kaggle nesting), or None."""
    for candidate in _ROOT_CANDIDATES:
        root = Path(raw_dir) / candidate
        if (root / "train" / "images").is_dir():
            return root
    return None


def require_data_root(raw_dir: Path) -> Path:
    """Return the data root of ``raw_dir``, or raise a VasegError that says how to get one."""
    if not Path(raw_dir).exists():
        raise VasegError(
            f"Raw data folder {raw_dir} does not exist. Run `vaseg download --raw-dir {raw_dir}` "
            "(or `--source synthetic` for built-in test data), or pass the right --raw-dir."
        )
    root = find_data_root(raw_dir)
    if root is None:
        raise VasegError(
            f"No OpenEDS tree in {raw_dir}: expected train/images under {raw_dir}, {raw_dir}/openEDS or "
            f"{raw_dir}/openEDS/openEDS. Run `vaseg download --raw-dir {raw_dir} --force` to fetch it again."
        )
    return root


def list_split(root: Path, split: str) -> list[RawSample]:
    """Return the split's images paired with labels by file stem, sorted by stem."""
    image_dir = Path(root) / split / "images"
    label_dir = Path(root) / split / "labels"
    if not image_dir.is_dir():
        return []
    labels = {p.stem: p for p in label_dir.glob("*.npy")} if label_dir.is_dir() else {}
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() == ".png")
    samples = [RawSample(split, p.stem, p, labels.get(p.stem)) for p in images]
    image_stems = {s.stem for s in samples}
    # A label without an image is still a sample that cannot be made: report it.
    samples += [RawSample(split, stem, image_dir / f"{stem}.png", path) for stem, path in labels.items() if stem not in image_stems]
    return sorted(samples, key=lambda s: s.stem)


def has_labels(root: Path, split: str) -> bool:
    """Return True when the split has a labels folder with at least one .npy file."""
    label_dir = Path(root) / split / "labels"
    return label_dir.is_dir() and any(label_dir.glob("*.npy"))


def is_complete(raw_dir: Path) -> bool:
    """Return True when ``raw_dir`` holds train and validation images and labels."""
    root = find_data_root(raw_dir)
    if root is None:
        return False
    return all(
        any((root / split / "images").glob("*.png")) and has_labels(root, split) for split in ("train", "validation")
    )


def read_image(path: Path) -> np.ndarray:
    """Return the PNG at ``path`` as a 2-D uint8 gray image; 3-channel PNGs are converted.

    Raises:
        ValueError: the file is missing, unreadable or truncated.
    """
    import cv2

    data = np.fromfile(path, dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise ValueError("image file is missing")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ValueError("image is unreadable or truncated PNG")
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.dtype != np.uint8:
        raise ValueError(f"image has dtype {image.dtype.name}, expected 8-bit")
    return image


def read_label(path: Path | None) -> np.ndarray:
    """Return the integer label array stored at ``path``.

    Raises:
        ValueError: no label file, or it is not a readable .npy array.
    """
    if path is None or not Path(path).is_file():
        raise ValueError("label file is missing")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"label is not a readable .npy file ({err})") from None
