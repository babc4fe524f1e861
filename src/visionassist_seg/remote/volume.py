"""Layout of the Modal Volume and copying files between it and the local disk.

Volume layout (mounted at ``/vol`` in every container):

- ``runs/NAME/``: a training run folder (checkpoints, ONNX, metrics, plots, ``remote.json``);
- ``datasets/hub/OWNER/NAME/REVISION/``: a precomputed dataset, the cache of a Hub repository
  (written by ``vaseg precompute --remote`` or downloaded by a remote training), with
  `SNAPSHOT_FILE` saying where its files came from (see `read_snapshot`);
- ``datasets/local/NAME/``: a local precomputed folder uploaded for ``vaseg train --remote --dataset``;
- ``raw/kaggle/OWNER/NAME/``, ``raw/synthetic/countN-seedS/``: raw OpenEDS trees, downloaded once;
- ``uploads/NAME/``: a checkpoint uploaded to resume run NAME from.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

from visionassist_seg.errors import VasegError
from visionassist_seg.settings import Settings

VOLUME_MOUNT = PurePosixPath("/vol")
STATUS_FILE = "remote.json"
# Inside vaseg's private folder of the dataset: never pushed, never read as data.
SNAPSHOT_FILE = ".vaseg/hub-snapshot.json"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_run_name(name: str) -> str:
    """Return ``name`` if it can name a run folder on the Volume, else raise `VasegError`."""
    if not _RUN_NAME.match(name) or name in {".", ".."}:
        raise VasegError(
            f"Run name {name!r} cannot name a folder on the Modal Volume. Use letters, digits, '.', '_' "
            "or '-' (the last part of the run folder, e.g. `vaseg train --remote --output-dir runs/shallownet-l4`)."
        )
    return name


def run_key(name: str) -> str:
    """Return the Volume path (relative to its root) of run ``name``."""
    return f"runs/{name}"


def hub_dataset_key(settings: Settings) -> str:
    """Return the Volume path caching the Hub dataset ``hub.repo`` at ``hub.revision`` (default main)."""
    return f"datasets/hub/{settings.hub.repo}/{settings.hub.revision or 'main'}"


def local_dataset_key(dataset_dir: Path) -> str:
    """Return the Volume path a local precomputed folder is uploaded to."""
    return f"datasets/local/{Path(dataset_dir).resolve().name}"


def raw_key(settings: Settings) -> str:
    """Return the Volume path of the raw tree for the settings' source."""
    if settings.raw.source == "synthetic":
        return f"raw/synthetic/count{settings.raw.synthetic_count}-seed{settings.seed}"
    return f"raw/kaggle/{settings.raw.kaggle_dataset}"


def upload_key(name: str, filename: str) -> str:
    """Return the Volume path a file uploaded for run ``name`` is stored at."""
    return f"uploads/{name}/{filename}"


def write_snapshot(dataset_dir: Path, origin: str, repo_id: str, sha: str | None) -> None:
    """Record in ``dataset_dir`` that its files are complete and came from ``origin`` at Hub commit ``sha``.

    ``origin`` is "hub" (downloaded at commit ``sha``) or "precompute" (written on the Volume by
    ``vaseg precompute --remote``; ``sha`` is the commit its push made, None without a push).
    """
    from visionassist_seg.atomic_write import write_json_atomic

    write_json_atomic(Path(dataset_dir) / SNAPSHOT_FILE, {"origin": origin, "repo": repo_id, "sha": sha})


def read_snapshot(dataset_dir: Path) -> dict[str, Any] | None:
    """Return the record `write_snapshot` left in ``dataset_dir``, or None (none yet, or unreadable)."""
    path = Path(dataset_dir) / SNAPSHOT_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("origin") in ("hub", "precompute") else None


def clear_snapshot(dataset_dir: Path) -> None:
    """Forget where ``dataset_dir``'s files came from: the next run downloads them again."""
    (Path(dataset_dir) / SNAPSHOT_FILE).unlink(missing_ok=True)


def mounted(key: str) -> PurePosixPath:
    """Return where Volume path ``key`` appears inside a container."""
    return VOLUME_MOUNT / key


def existing_volume(name: str):  # -> modal.Volume
    """Return the Modal Volume ``name``, looked up now (never created).

    Raises:
        VasegError: there is no Volume of that name in the current Modal environment.
    """
    import modal
    from modal.exception import NotFoundError

    volume = modal.Volume.from_name(name)
    try:
        volume.hydrate()
    except NotFoundError:
        raise VasegError(
            f"Modal Volume {name!r} does not exist in the current Modal environment. vaseg creates it on the "
            "first `vaseg train --remote` or `vaseg precompute --remote`; list your Volumes with `modal volume "
            "list` and set `[modal] volume` in vaseg.toml (or VASEG_MODAL__VOLUME) to the one your runs used."
        ) from None
    return volume


def list_files(volume, key: str) -> list:  # volume: modal.Volume -> list[modal.volume.FileEntry]
    """Return the file entries under Volume path ``key`` (recursive), or [] when it does not exist."""
    from modal.exception import NotFoundError
    from modal.volume import FileEntryType

    try:
        entries = volume.listdir(key, recursive=True)
    except (NotFoundError, FileNotFoundError):
        return []
    return [entry for entry in entries if entry.type == FileEntryType.FILE]


def download_dir(volume, key: str, local_dir: Path) -> list[Path]:
    """Copy every file under Volume path ``key`` into ``local_dir``; return the local paths written.

    Each file is written to a ``.part`` file first and renamed, so an interrupted copy never
    leaves a truncated checkpoint under its real name.
    """
    written = []
    prefix = PurePosixPath(key.strip("/"))
    for entry in list_files(volume, key):
        relative = PurePosixPath(entry.path.lstrip("/")).relative_to(prefix)
        target = Path(local_dir, *relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        with open(partial, "wb") as handle:
            for chunk in volume.read_file(entry.path):
                handle.write(chunk)
        partial.replace(target)
        written.append(target)
    return written


def upload_dir(volume, local_dir: Path, key: str) -> None:
    """Upload ``local_dir`` (recursively) to Volume path ``key``, overwriting files there."""
    with volume.batch_upload(force=True) as batch:
        batch.put_directory(str(local_dir), key)


def upload_file(volume, local_file: Path, key: str) -> None:
    """Upload one file to Volume path ``key``, overwriting it."""
    with volume.batch_upload(force=True) as batch:
        batch.put_file(str(local_file), key)


def read_json(volume, key: str) -> dict[str, Any] | None:
    """Return the JSON object stored at Volume path ``key``, or None when it is missing or unreadable."""
    from modal.exception import NotFoundError

    try:
        data = b"".join(volume.read_file(key))
    except (NotFoundError, FileNotFoundError):
        return None
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None
