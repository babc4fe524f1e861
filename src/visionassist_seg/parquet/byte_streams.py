"""Parquet's BYTE_STREAM_SPLIT encoding, both ways, through OpenCV's channel split and merge.

Byte k of value i lives at ``k * n + i`` in the encoded buffer. Viewing the values as an
image whose pixels are the values' bytes turns encoding into ``cv2.split`` (channels to
planes) and decoding into ``cv2.merge`` (planes to channels): the same bytes as numpy's
strided transposing copies, several times faster (README, Performance).
"""

from __future__ import annotations

import numpy as np

# Row widths tried for the image layout handed to OpenCV (any divisor of the count works).
_PLANE_WIDTHS = (1024, 1000, 640, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1)


def _plane_width(count: int) -> int:
    return next(width for width in _PLANE_WIDTHS if count % width == 0)


def split_streams(values: np.ndarray, out: np.ndarray) -> None:
    """Write the BYTE_STREAM_SPLIT encoding of ``values`` into ``out``.

    Shape:
        values: (...) contiguous, n values of itemsize k; out: (n * k,) uint8
    """
    import cv2

    count, itemsize = values.size, values.dtype.itemsize
    width = _plane_width(count)
    source = values.reshape(-1).view(np.uint8).reshape(-1, width, itemsize)
    planes = [out[k * count : (k + 1) * count].reshape(-1, width) for k in range(itemsize)]
    written = cv2.split(source, planes)
    for plane, result in zip(planes, written, strict=True):
        if not np.shares_memory(plane, result):  # OpenCV allocated instead of writing in place
            plane[:] = result.reshape(plane.shape)


def unsplit_streams(raw: np.ndarray, out: np.ndarray) -> None:
    """Decode BYTE_STREAM_SPLIT bytes ``raw`` into ``out``.

    Shape:
        raw: (n * itemsize,) uint8; out: (n,) of a dtype with that itemsize
    """
    import cv2

    count, itemsize = len(out), out.dtype.itemsize
    width = _plane_width(count)
    planes = [raw[k * count : (k + 1) * count].reshape(-1, width) for k in range(itemsize)]
    target = out.view(np.uint8).reshape(-1, width, itemsize)
    merged = cv2.merge(planes, target)
    if not np.shares_memory(merged, target):  # OpenCV allocated instead of writing in place
        target[:] = merged.reshape(target.shape)
