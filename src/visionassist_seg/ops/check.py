"""One shared input check for the ops functions."""

from __future__ import annotations

import numpy as np


def check_array(array: np.ndarray, name: str, *, ndim: int = 2, dtype: type | None = None) -> np.ndarray:
    """Return ``array`` unchanged after checking its type, rank and (optionally) dtype.

    Raises:
        TypeError: ``array`` is not a numpy array or has the wrong dtype.
        ValueError: ``array`` has the wrong number of dimensions or is empty.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(array).__name__}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype).name}, got {array.dtype.name}")
    return array
