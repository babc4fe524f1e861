"""Raw OpenEDS -> preprocessed dataset: fetch the raw data, write the shards, apply --strict."""

from __future__ import annotations

from pathlib import Path

from visionassist_seg.data.output_folder import check_output_dir
from visionassist_seg.data.precompute import PrecomputeReport, plan_shards, write_dataset
from visionassist_seg.data.schema import MANIFEST
from visionassist_seg.errors import VasegError
from visionassist_seg.folder_lock import make_folder
from visionassist_seg.settings import Settings


def run_precompute(
    settings: Settings,
    *,
    download: bool = True,
    force_download: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> PrecomputeReport:
    """Fetch the raw data if needed, write every shard in parallel, then the manifest and card; return the report.

    The output folder is checked before the download (`check_output_dir`), so a folder
    precompute may not write fails before hours of downloading; `write_dataset` checks it
    again under the folder's lock. ``force_download`` fetches the raw data again even when
    a complete copy is there.

    Raises:
        VasegError: the folder belongs to someone else, another run holds it, it cannot be
            created, or the raw data is missing.
    """
    from visionassist_seg.console import item_progress
    from visionassist_seg.kaggle import ensure_raw

    output_dir = Path(settings.dataset.dir)
    check_output_dir(output_dir, overwrite=overwrite)  # fail before a long download ...
    make_folder(output_dir)  # ... also when the folder cannot be created
    if download or force_download:
        ensure_raw(settings, force=force_download)
    tasks = plan_shards(settings)
    return write_dataset(
        settings, tasks, overwrite=overwrite, track=lambda total: item_progress(total, "precompute", enabled=progress)
    )


def check_strict(report: PrecomputeReport, settings: Settings, *, where: str = "") -> None:
    """Raise when ``settings.dataset.strict`` is set and the run skipped a sample as bad input.

    ``where`` follows the manifest's path in the message (e.g. " on the Modal Volume").

    Raises:
        VasegError: the first skipped sample, and where the full list is.
    """
    if not (report.skipped and settings.dataset.strict):
        return
    first = report.skipped[0]
    raise VasegError(
        f"{len(report.skipped)} sample(s) were skipped as bad input (--strict), so nothing was pushed; the "
        f"first: {first['file']}: {first['reason']}. The full list is in {Path(settings.dataset.dir) / MANIFEST}"
        f"{where}; fix or remove those files, or drop --strict."
    )
