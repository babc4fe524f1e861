"""`vaseg validate`: check a precomputed dataset (local folder or Hub) and print one row per check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from visionassist_seg.cli._common import ConfigOpt, DatasetDirOpt, RawDirOpt, RepoOpt, RevisionOpt, SeedOpt, WorkersOpt

SamplesOpt = Annotated[
    Optional[int],
    typer.Option("--samples", min=1, help="Rows to recompute from --raw-dir (seeded random choice). [default: 32]", show_default=False),
]
AllRowsOpt = Annotated[bool, typer.Option("--all", help="Recompute every row from --raw-dir.")]
JsonOpt = Annotated[
    Optional[Path], typer.Option("--json", help="Also write the report as JSON to this file.", show_default=False)
]


def validate(
    dataset: DatasetDirOpt = None,
    hf_repo: RepoOpt = None,
    revision: RevisionOpt = None,
    raw_dir: RawDirOpt = None,
    samples: SamplesOpt = None,
    all_rows: AllRowsOpt = False,
    seed: SeedOpt = None,
    workers: WorkersOpt = None,
    json_file: JsonOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Check a precomputed dataset: structure, schema, values, recomputation, statistics.

    Target: --dataset DIR (precompute output) or a Hub dataset (--hf-repo ID, with
    --revision). Without either, the same folder `vaseg push` would upload (the setting
    `[dataset] dir`) when it holds parquet files, else the settings' Hub repository
    (also when only --revision is given). With --raw-dir, --samples rows (or --all) are
    recomputed from the raw files and compared. Exit 0 when every check passes, 1 when
    any fails, 2 on usage errors.
    """
    from functools import partial

    from visionassist_seg.console import console, item_progress
    from visionassist_seg.data.training_folder import default_local_dataset
    from visionassist_seg.errors import VasegError
    from visionassist_seg.settings import load_settings
    from visionassist_seg.validate import validate_dataset

    if dataset is not None and hf_repo is not None:
        raise VasegError("Pass either --dataset DIR or --hf-repo ID, not both.", exit_code=2)
    if raw_dir is None and (samples is not None or all_rows):
        raise VasegError("--samples and --all choose rows to recompute: they need --raw-dir RAW_DIR.", exit_code=2)
    if json_file is not None and json_file.is_dir():  # found now, not after a long validation
        raise VasegError(
            f"--json {json_file} is a folder; pass a file path for the report, e.g. {json_file / 'report.json'}.",
            exit_code=2,
        )
    settings = load_settings(
        config, seed=seed, workers=workers, dataset={"dir": dataset}, hub={"repo": hf_repo, "revision": revision}
    )
    if dataset is None and hf_repo is None and revision is None:
        dataset = default_local_dataset(settings)
    report = validate_dataset(
        dataset_dir=dataset,
        hf_repo=None if dataset is not None else settings.hub.repo,
        revision=None if dataset is not None else settings.hub.revision,
        raw_dir=raw_dir,
        samples=samples or 32,
        all_rows=all_rows,
        seed=settings.seed,
        workers=settings.workers,
        track=partial(item_progress, unit="tasks"),
    )
    console.print(report.to_table())
    if json_file is not None:
        report.write_json(json_file)
        console.print(f"Report written to {json_file}", highlight=False)
    if not report.passed:
        failed = ", ".join(row.check for row in report.failed_rows())
        raise VasegError(f"Validation failed ({failed}); the table above names each offending row.", exit_code=1)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
