"""Which folders precompute may write a dataset into, and vaseg's records of what it wrote there.

Precompute writes only into a folder that is missing, empty, or recorded as one it made
itself (``.vaseg/owner.json``, written when it first claims the folder). Any other folder
belongs to someone else: precompute stops before changing anything and names the way
out, ``--overwrite``. Even then nothing vaseg did not write is deleted: the files that
would be in the way (a dataset card, a manifest, train/validation shards without a vaseg
record) are moved aside into ``.vaseg/displaced/TIMESTAMP/``, keeping their paths.

Every shard vaseg writes is recorded in ``.vaseg/shards/NAME.json`` before it appears in
``data/``, so a shard in ``data/`` without a record was not written by vaseg, and vaseg
deletes only shards whose records it holds.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from visionassist_seg import __version__
from visionassist_seg.atomic_write import write_json_atomic
from visionassist_seg.data.schema import CARD, DATA_DIR, MANIFEST, SPLITS, SHARD_PATTERN
from visionassist_seg.errors import VasegError
from visionassist_seg.folder_lock import LOCK_FILE, folder_error

STATE_DIR = ".vaseg"
OWNER_FILE = "owner.json"
JOB = "precompute"
DISPLACED_DIR = "displaced"
# What vaseg's own bookkeeping adds to any folder it uses: a folder holding only these is empty.
BOOKKEEPING = frozenset({STATE_DIR, LOCK_FILE})
_LISTED = 5  # names quoted in a message before "and N more"


@dataclass(frozen=True)
class FolderCheck:
    """What `check_output_dir` found: whether precompute made the folder, and what is in its way."""

    folder: Path
    owned: bool
    in_the_way: tuple[Path, ...] = field(default_factory=tuple)


def shard_records_dir(output_dir: Path) -> Path:
    """Return the folder of vaseg's shard records in a dataset folder."""
    return Path(output_dir) / STATE_DIR / "shards"


def shard_record(output_dir: Path, name: str) -> Path:
    """Return the path of the record vaseg keeps for shard ``name`` (written before the shard)."""
    return shard_records_dir(output_dir) / f"{name}.json"


def check_output_dir(output_dir: Path, *, overwrite: bool = False) -> FolderCheck:
    """Return what is in ``output_dir``, or raise if precompute may not write there.

    Raises:
        VasegError: the path is a file or unusable, or the folder holds someone else's files
            (without ``overwrite``), or shards vaseg did not write sit where the dataset's go.
    """
    folder = Path(output_dir)
    try:
        if not folder.exists():
            return FolderCheck(folder, owned=False)
        if not folder.is_dir():
            raise VasegError(f"--dataset {folder} is a file, not a folder. Pass a folder path for the dataset.")
        job = _owner_job(folder)
        entries = sorted(p.name for p in folder.iterdir() if p.name not in BOOKKEEPING)
        if job not in (None, JOB):  # another vaseg job's folder (a demo, a run), even with nothing else in it
            entries.insert(0, f"{STATE_DIR}/{OWNER_FILE} of a vaseg {job}")
        elif not entries:
            return FolderCheck(folder, owned=False)
        owned = job == JOB or (job is None and shard_records_dir(folder).is_dir())  # records: before owner.json
        in_the_way = tuple(_in_the_way(folder, owned))
    except OSError as err:
        raise folder_error(folder, err) from None
    if owned and not in_the_way:
        return FolderCheck(folder, owned=True)
    if not overwrite:
        raise VasegError(_refusal(folder, owned, entries, in_the_way))
    return FolderCheck(folder, owned, in_the_way)


def _owner_job(folder: Path) -> str | None:
    """Return the job vaseg's record says made ``folder`` ("precompute", "demo", ...), or None without a record."""
    try:
        owner = json.loads((folder / STATE_DIR / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(owner.get("job")) if isinstance(owner, dict) else None


def _in_the_way(folder: Path, owned: bool) -> list[Path]:
    """Return the files precompute would replace or that would join its dataset, which vaseg did not write."""
    found = [] if owned else [folder / name for name in (CARD, MANIFEST) if (folder / name).exists()]
    data_dir = folder / DATA_DIR
    if data_dir.is_dir():
        for path in sorted(data_dir.iterdir()):
            match = SHARD_PATTERN.match(path.name)
            if match and match["split"] in SPLITS and not shard_record(folder, path.name).is_file():
                found.append(path)
    return found


def _names(paths: list[str]) -> str:
    shown = ", ".join(paths[:_LISTED])
    return shown + (f" and {len(paths) - _LISTED} more" if len(paths) > _LISTED else "")


def _refusal(folder: Path, owned: bool, entries: list[str], in_the_way: tuple[Path, ...]) -> str:
    moved = (
        f"the files in the way ({_names([str(p.relative_to(folder)) for p in in_the_way])}) are moved to "
        f"{folder / STATE_DIR / DISPLACED_DIR}/ and nothing is deleted"
        if in_the_way
        else "nothing there is moved or deleted"
    )
    if owned:
        return (
            f"Output folder {folder} is a vaseg dataset folder, but data/ holds shards vaseg did not write "
            f"({_names([p.name for p in in_the_way])}); they would be read as part of the dataset. Move them "
            f"elsewhere, or add --overwrite: {moved}."
        )
    return (
        f"Output folder {folder} is not empty and vaseg did not make it for precompute (it holds "
        f"{_names(entries)}). precompute writes only into an empty folder or one it made, so nothing was "
        f"changed. Pass a new --dataset folder, or add --overwrite to write here: {moved}."
    )


def claim_output_dir(check: FolderCheck) -> list[Path]:
    """Record ``check.folder`` as precompute's and move what is in the way aside; return the new paths.

    Call it while holding the folder's lock, after `check_output_dir`.
    """
    folder = check.folder
    moved = []
    if check.in_the_way:
        target = folder / STATE_DIR / DISPLACED_DIR / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        for path in check.in_the_way:
            destination = _free_path(target / path.relative_to(folder))
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, destination)  # a rename inside one folder: nothing is copied or lost
            moved.append(destination)
    if not check.owned:
        write_json_atomic(folder / STATE_DIR / OWNER_FILE, {"job": JOB, "package_version": __version__})
    return moved


def _free_path(path: Path) -> Path:
    """Return ``path``, or ``path`` with a numeric suffix when a file is already there."""
    candidate, number = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{number}")
        number += 1
    return candidate
