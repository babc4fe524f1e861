"""Publish a dataset folder: check it (structure, schema, values), then upload it to the Hub."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from visionassist_seg import hub
from visionassist_seg.errors import VasegError
from visionassist_seg.settings import Settings


def push_dataset(
    dataset_dir: Path, settings: Settings, *, force: bool = False, message: str | None = None, progress: bool = True
) -> str:
    """Return the Hub URL of ``dataset_dir`` after validating it and publishing it (`hub.upload_dataset`).

    The repository id, the folder and the token are checked before the validation scan,
    so a missing token fails fast. ``progress`` shows the scan's progress bar.

    Raises:
        VasegError: a bad repository id (exit 2), not a dataset folder, no token, the
            dataset fails validation (unless ``force``), or the upload fails.
    """
    dataset_dir = Path(dataset_dir)
    token = hub.check_push_target(dataset_dir, settings)
    check_before_push(dataset_dir, settings, force=force, progress=progress)
    return hub.upload_dataset(dataset_dir, settings, token=token, message=message)


def check_before_push(dataset_dir: Path, settings: Settings, *, force: bool, progress: bool = True) -> None:
    """Raise a VasegError when ``dataset_dir`` fails validation or is in the legacy format (unless ``force``)."""
    from visionassist_seg.console import item_progress
    from visionassist_seg.validate import validate_dataset

    track = partial(item_progress, unit="tasks") if progress else None
    report = validate_dataset(dataset_dir, workers=settings.workers, track=track)
    problems = [f"{row.check}: {row.details}" for row in report.failed_rows()]
    if report.legacy:
        problems.append("schema: legacy format (rerun `vaseg precompute` to publish the current format)")
    if problems and not force:
        raise VasegError(
            f"Refusing to push {dataset_dir}: " + " | ".join(problems) + ". Fix the dataset (rerun "
            "`vaseg precompute`), see `vaseg validate --dataset DIR` for the full report, or pass --force."
        )
