"""A training checkpoint's records (recipe, settings, epoch, metrics), read without torch.

`vaseg train --remote --resume` checks the resumed run's data and recipe on this machine
before anything is uploaded, and a core install has no torch. ``torch.save`` writes a zip
archive whose ``data.pkl`` holds the checkpoint dict, with tensor data stored beside it;
this reads that pickle with every torch object (tensors, storages) left out, allowing only
plain Python containers and torch's own names, as ``torch.load(weights_only=True)`` also
allows only a fixed set of types.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from visionassist_seg.errors import VasegError

# What a checkpoint must hold for --resume to continue exactly.
RESUME_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "metrics", "best", "rng")
_ALLOWED = frozenset({("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset")})


class LeftOut:
    """Stands in for a torch object (a tensor, its storage, a dtype) that the records do not need."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class _RecordUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" or module.startswith("torch."):
            return LeftOut
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a vaseg checkpoint does not hold")

    def persistent_load(self, pid: Any) -> None:
        return None  # tensor data: stored in the archive's other members, not needed here


def read_checkpoint_records(path: Path) -> dict[str, Any]:
    """Return the checkpoint at ``path`` with every torch object replaced by `LeftOut`.

    Raises:
        VasegError: the file is missing, is not a ``torch.save`` archive of a vaseg training
            checkpoint, or lacks some of `RESUME_KEYS`.
    """
    path = Path(path)
    if not path.is_file():
        raise VasegError(f"Checkpoint {path} does not exist. Pass --resume the last.pt of an earlier run.")
    try:
        with zipfile.ZipFile(path) as archive:
            member = next((name for name in archive.namelist() if name.rpartition("/")[2] == "data.pkl"), None)
            if member is None:
                raise pickle.UnpicklingError("it has no data.pkl")
            with archive.open(member) as handle:
                state = _RecordUnpickler(handle).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as err:
        raise VasegError(
            f"{path} is not a vaseg training checkpoint ({err}). Pass --resume a last.pt written by `vaseg train`."
        ) from None
    check_resume_keys(state if isinstance(state, dict) else {}, path)
    return state


def check_resume_keys(state: dict[str, Any], path: Path, hint: str = "") -> None:
    """Raise if the checkpoint ``state`` read from ``path`` lacks any of `RESUME_KEYS` (``hint`` ends the message)."""
    missing = [key for key in RESUME_KEYS if key not in state]
    if missing:
        raise VasegError(
            f"Checkpoint {path} lacks {', '.join(missing)}, which --resume needs to continue a run exactly. "
            f"Pass --resume a last.pt written by `vaseg train`.{hint}"
        )
