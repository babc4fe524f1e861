"""Writing a file in one step: readers see the old content or the new, never half of it.

Every writer goes through a hidden ``.{name}.{pid}.tmp`` sibling that is renamed over the
target when complete (`os.replace` is atomic within one filesystem). The pid keeps two
processes writing the same file from sharing a temporary; `hub.PRIVATE_PATTERNS` keeps
such temporaries off the Hub.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator


def temporary_sibling(path: Path) -> Path:
    """Return the hidden temporary file that `open_atomic` writes before renaming it to ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def open_atomic(path: Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Yield a handle whose content replaces ``path`` when the block ends without an error.

    Creates the parent folder. On an error the temporary file is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` in one step."""
    with open_atomic(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` in one step."""
    with open_atomic(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_json_atomic(path: Path, data: dict, *, sort_keys: bool = True) -> None:
    """Write ``data`` as indented JSON to ``path`` in one step (values JSON cannot hold as ``str``)."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + "\n")


def replace_atomic(tmp: Path, final: Path) -> None:
    """Move a fully written ``tmp`` onto ``final`` in one step (same filesystem), creating ``final``'s folder."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
