"""The raw OpenEDS tree: locating its root, listing samples, reading image/label files.

Raw files come from outside (a download, a colleague's copy, hand fixes), so every
reader checks what a file claims before acting on it: a PNG's size is read from its
IHDR header and a ``.npy`` label's shape from its header, and anything implausible is
refused before a single pixel is decoded or allocated. Extensions are matched without
regard to case everywhere (``x.PNG`` pairs with ``x.NPY``), and names the dataset
cannot hold (two files for one stem, names that are not UTF-8) become a sample's
``problem``: skipped and listed, never a crash.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from visionassist_seg.errors import VasegError

RAW_SPLITS = ("train", "validation", "test")
_ROOT_CANDIDATES = (".", "openEDS", "openEDS/openEDS")
IMAGE_SUFFIX = ".png"
LABEL_SUFFIX = ".npy"
# OpenEDS frames are 640x400; anything far larger is not an eye frame, and decoding it
# first would cost gigabytes (a 30000x30000 PNG decodes to 1.9 GB as 16-bit gray).
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_IMAGE_BYTES = 128 << 20  # an uncompressed 4096x4096 RGBA PNG is 64 MiB
MAX_LABEL_BYTES = 64 << 20  # a 400x640 int64 label is 2 MB
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_HEAD = 29  # signature (8) + IHDR length and type (8) + width, height, bit depth, colour type (13)


@dataclass(frozen=True)
class RawSample:
    """One raw image and its label file (``label`` is None when the image has no label).

    ``problem`` says why the sample cannot become a dataset row whatever its files hold
    (a duplicate stem, a name that is not UTF-8); None for an ordinary sample.
    """

    split: str
    stem: str
    image: Path
    label: Path | None
    problem: str | None = None


def display_name(path: Path | str) -> str:
    """Return ``path`` as printable text: bytes that are not UTF-8 shown as ``\\xNN`` escapes.

    Linux file names are bytes; Python keeps undecodable ones as lone surrogates, which
    no UTF-8 writer (JSON, parquet, the terminal) accepts.
    """
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


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


def _entries_with_suffix(folder: Path, suffix: str) -> Iterator[Path]:
    """Yield the files in ``folder`` whose extension is ``suffix`` in any case (nothing without the folder)."""
    try:
        with os.scandir(folder) as entries:  # DirEntry.is_file needs no stat call on most file systems
            for entry in entries:
                if os.path.splitext(entry.name)[1].lower() == suffix and entry.is_file():
                    yield Path(folder) / entry.name
    except (FileNotFoundError, NotADirectoryError):
        return


def files_with_suffix(folder: Path, suffix: str) -> list[Path]:
    """Return the files in ``folder`` whose extension is ``suffix`` in any case, sorted; [] without the folder."""
    return sorted(_entries_with_suffix(folder, suffix))


def find_raw_files(split_dir: Path, stem: str) -> tuple[Path, Path]:
    """Return the (image, label) paths of ``stem`` in a raw split folder, extensions matched in any case.

    The lower-case names are returned when no file matches, so that an error names them.
    """
    found = []
    for folder, suffix in (("images", IMAGE_SUFFIX), ("labels", LABEL_SUFFIX)):
        exact = Path(split_dir) / folder / f"{stem}{suffix}"
        if exact.is_file():
            found.append(exact)
            continue
        matches = [p for p in _entries_with_suffix(exact.parent, suffix) if p.stem == stem]
        found.append(matches[0] if len(matches) == 1 else exact)
    return found[0], found[1]


def _by_stem(paths: list[Path]) -> dict[str, list[Path]]:
    grouped: dict[str, list[Path]] = {}
    for path in paths:
        grouped.setdefault(path.stem, []).append(path)
    return grouped


def list_split(root: Path, split: str) -> list[RawSample]:
    """Return the split's images paired with labels by file stem, sorted by stem.

    A label without an image is listed too (with a missing image path), so that it is
    reported rather than silently dropped.
    """
    image_dir = Path(root) / split / "images"
    if not image_dir.is_dir():
        return []
    images = _by_stem(files_with_suffix(image_dir, IMAGE_SUFFIX))
    labels = _by_stem(files_with_suffix(Path(root) / split / "labels", LABEL_SUFFIX))
    samples = []
    for stem in sorted(images.keys() | labels.keys()):
        image_paths = images.get(stem, [image_dir / f"{stem}{IMAGE_SUFFIX}"])
        label_paths = labels.get(stem, [None])
        problem = _name_problem(stem, image_paths, label_paths)
        samples.append(RawSample(split, stem, image_paths[0], label_paths[0], problem))
    return samples


def _name_problem(stem: str, images: list[Path], labels: list[Path | None]) -> str | None:
    """Return why a stem's files cannot make one row (duplicates, a non-UTF-8 name), or None."""
    for kind, paths in (("images", images), ("labels", labels)):
        if len(paths) > 1:
            names = ", ".join(display_name(p.name) for p in paths if p is not None)
            return f"{len(paths)} {kind} share the stem '{display_name(stem)}' ({names}): rename or remove all but one"
    if display_name(stem) != stem:
        return f"file name '{display_name(stem)}' is not valid UTF-8 and cannot be stored in the dataset: rename the image and its label"
    return None


def has_labels(root: Path, split: str) -> bool:
    """Return True when the split has a labels folder with at least one .npy file (any case)."""
    return next(_entries_with_suffix(Path(root) / split / "labels", LABEL_SUFFIX), None) is not None


def is_complete(raw_dir: Path) -> bool:
    """Return True when ``raw_dir`` holds train and validation images and labels."""
    root = find_data_root(raw_dir)
    if root is None:
        return False
    return all(
        next(_entries_with_suffix(root / split / "images", IMAGE_SUFFIX), None) is not None and has_labels(root, split)
        for split in ("train", "validation")
    )


def read_image_bytes(path: Path) -> bytes:
    """Return the bytes of the PNG at ``path`` after checking its header.

    Raises:
        ValueError: the file is missing, not a PNG, or its header claims a size or bit
            depth vaseg does not read (checked before the file is read in full).
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(_PNG_HEAD)
            _check_png_head(head)
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_IMAGE_BYTES:
                raise ValueError(f"image file holds {_size_text(size)}, over the {_size_text(MAX_IMAGE_BYTES)} vaseg reads")
            return head + handle.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise ValueError("image file is missing") from None
    except OSError as err:
        raise ValueError(f"image file cannot be read ({err.strerror})") from None


def _check_png_head(head: bytes) -> None:
    if len(head) < _PNG_HEAD or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise ValueError("image is unreadable or truncated PNG (no PNG header)")
    width, height, bit_depth = struct.unpack(">IIB", head[16:25])
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"image header says {width}x{height} pixels, over the {MAX_IMAGE_PIXELS:,} vaseg decodes "
            "(OpenEDS frames are 640x400); not decoded"
        )
    if bit_depth > 8:
        raise ValueError(f"image has {bit_depth} bits per channel, expected 8-bit")


def decode_image(data: bytes) -> np.ndarray:
    """Return PNG bytes as a 2-D uint8 gray image; 3- and 4-channel PNGs are converted.

    Raises:
        ValueError: the data is not a decodable 8-bit PNG.
    """
    import cv2

    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    if image is None:
        raise ValueError("image is unreadable or truncated PNG")
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.dtype != np.uint8:
        raise ValueError(f"image has dtype {image.dtype.name}, expected 8-bit")
    return image


def read_image(path: Path) -> np.ndarray:
    """Return the PNG at ``path`` as a 2-D uint8 gray image; 3-channel PNGs are converted.

    Raises:
        ValueError: the file is missing, unreadable, truncated or implausibly large.
    """
    return decode_image(read_image_bytes(path))


def read_label_bytes(path: Path | None) -> bytes:
    """Return the bytes of the ``.npy`` label at ``path`` after checking its header against the file.

    The header's shape and dtype are read first (`numpy.lib.format`), and the file is
    refused unless they describe exactly the bytes that follow, at most
    ``MAX_LABEL_BYTES``: a header claiming a huge shape never reaches an allocation.

    Raises:
        ValueError: no label file, a malformed header, or a header that does not match the file.
    """
    if path is None:
        raise ValueError("label file is missing")
    try:
        with open(path, "rb") as handle:
            data_bytes = _checked_npy_header(handle, os.fstat(handle.fileno()).st_size)
            head_size = handle.tell()
            handle.seek(0)
            return handle.read(head_size + data_bytes)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise ValueError("label file is missing") from None
    except OSError as err:
        raise ValueError(f"label file cannot be read ({err.strerror})") from None


def _checked_npy_header(handle, file_size: int) -> int:  # handle: binary file at offset 0
    """Return the data size the header of an open ``.npy`` file declares, after checking it."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(handle)
        reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = reader(handle)
    except (ValueError, EOFError, SyntaxError, TypeError) as err:
        raise ValueError(f"label is not a readable .npy file ({err})") from None
    if dtype.hasobject:
        raise ValueError("label is not a readable .npy file (it holds Python objects)")
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize  # Python ints: no overflow
    stored = file_size - handle.tell()
    claim = f"label header claims shape {tuple(shape)} {dtype.name} ({_size_text(declared)})"
    if declared != stored:
        raise ValueError(f"{claim} but the file holds {_size_text(stored)} of data; not loaded")
    if declared > MAX_LABEL_BYTES:
        raise ValueError(f"{claim}, over the {_size_text(MAX_LABEL_BYTES)} vaseg loads (labels are 400x640)")
    return declared


def _size_text(count: int) -> str:
    """Return a byte count as text in the largest binary unit below it (up to TiB)."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    power = 0
    while count >= 1024 ** (power + 1) and power < len(units) - 1:
        power += 1
    return f"{count} bytes" if power == 0 else f"{count / 1024 ** power:.2f} {units[power]}"


def decode_label(data: bytes) -> np.ndarray:
    """Return the array stored in ``.npy`` bytes (no pickles).

    Raises:
        ValueError: the bytes are not a readable ``.npy`` array.
    """
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"label is not a readable .npy file ({err})") from None


def read_label(path: Path | None) -> np.ndarray:
    """Return the integer label array stored at ``path``.

    Raises:
        ValueError: no label file, or it is not a readable .npy array of a plausible size.
    """
    return decode_label(read_label_bytes(path))
