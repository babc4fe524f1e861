"""`vaseg precompute`: raw OpenEDS -> preprocessed parquet dataset (and push to the Hub)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from visionassist_seg.cli._common import ConfigOpt, LimitOpt, RawDirOpt, RepoOpt, SourceOpt, WorkersOpt

if TYPE_CHECKING:
    from visionassist_seg.settings import Settings


def precompute(
    raw_dir: RawDirOpt = None,
    dataset: Annotated[
        Optional[Path],
        typer.Option(
            "--dataset",
            "--output-dir",
            help="Dataset folder to write (--output-dir is an alias kept for older scripts). [default: ./precompute_output]",
            show_default=False,
        ),
    ] = None,
    skip_download: Annotated[bool, typer.Option("--skip-download", help="Use --raw-dir as it is; never download.")] = False,
    force_download: Annotated[
        bool,
        typer.Option(
            "--force-download", help="Download the raw data again, replacing a partial or broken copy (also with --remote)."
        ),
    ] = False,
    no_push: Annotated[bool, typer.Option("--no-push", help="Write the dataset locally only; do not upload it.")] = False,
    hf_repo: RepoOpt = None,
    workers: WorkersOpt = None,
    limit: LimitOpt = None,
    strict: Annotated[Optional[bool], typer.Option("--strict", help="Exit 1 if any sample is skipped as bad input.", show_default=False)] = None,
    source: SourceOpt = None,
    shard_size: Annotated[
        Optional[int], typer.Option("--shard-size", min=1, help="Raw samples per parquet shard. [default: 256]", show_default=False)
    ] = None,
    remote: Annotated[
        bool, typer.Option("--remote", help="Run download, precompute and push on Modal (--workers = containers).")
    ] = False,
    validate: Annotated[
        bool, typer.Option("--validate", help="Alias of `vaseg validate --dataset DIR`: check the dataset folder, don't compute.")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Write into a non-empty folder vaseg did not make; files in the way are moved to .vaseg/displaced/, never deleted.",
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Preprocess train and validation into parquet shards + dataset card + manifest.json.

    Steps: download (unless --skip-download or already complete), gamma + CLAHE, pupil
    label, spatial weights and signed distance maps for every sample, written in parallel
    as data/{split}-NNNNN-of-NNNNN.parquet. Interrupted runs resume. Bad samples are
    skipped and listed. Pushes to --hf-repo unless --no-push. Writes only into an empty
    folder or one precompute made (else --overwrite); one run per folder at a time. Ctrl-C
    stops the workers and exits 130; rerun the same command to resume.
    """
    from visionassist_seg.errors import VasegError
    from visionassist_seg.settings import load_settings

    settings = load_settings(
        config, workers=workers, raw={"dir": raw_dir, "source": source}, hub={"repo": hf_repo},
        dataset={"dir": dataset, "limit": limit, "strict": strict, "shard_size": shard_size},
    )
    if force_download and skip_download:
        raise VasegError("--force-download and --skip-download contradict each other; drop one.", exit_code=2)
    if not no_push:
        from visionassist_seg.hub import check_repo_id

        check_repo_id(settings.hub.repo, "[hub] repo")  # a value from vaseg.toml too, before hours of work
    if validate:
        from visionassist_seg.cli.validate import validate as validate_command

        validate_command(dataset=settings.dataset.dir, raw_dir=raw_dir, workers=workers, config=config)
    elif remote:
        from visionassist_seg.remote import precompute_remote

        print_report(precompute_remote(settings, push=not no_push, force_download=force_download))
    else:
        _precompute_here(settings, download=not skip_download, force_download=force_download, overwrite=overwrite, push=not no_push)


def _precompute_here(settings: Settings, *, download: bool, force_download: bool, overwrite: bool, push: bool) -> None:
    """Run precompute on this machine, print its report, apply --strict, then push unless told not to."""
    from visionassist_seg.console import console, err_console
    from visionassist_seg.data.raw import display_name
    from visionassist_seg.pipeline.precompute import check_strict, run_precompute

    try:
        report = run_precompute(settings, download=download, force_download=force_download, overwrite=overwrite)
    except KeyboardInterrupt:
        err_console.print(
            f"Interrupted: the shards finished in {display_name(settings.dataset.dir)} are kept; "
            "rerun the same command to resume.",
            highlight=False,
            soft_wrap=True,  # one line, whatever the terminal width
        )
        raise typer.Exit(130) from None
    print_report(report)
    check_strict(report, settings)
    if push:
        from visionassist_seg.pipeline.push import push_dataset

        url = push_dataset(settings.dataset.dir, settings)
        console.print(f"Pushed to {url}", highlight=False)


def print_report(report) -> None:  # type: ignore[no-untyped-def]
    """Print the run summary table, any skipped samples and any files moved aside (consoles print plain text: names show as typed)."""
    from rich.table import Table

    from visionassist_seg.console import console, styled
    from visionassist_seg.data.raw import display_name

    table = Table(title=f"precompute: {display_name(report.output_dir)}")
    for column in ("split", "rows", "shards", "skipped", "MB on disk"):
        table.add_column(column, justify="right" if column != "split" else "left")
    for split, rows in report.rows.items():
        skipped = sum(1 for s in report.skipped if s["split"] == split)
        table.add_row(split, str(rows), str(report.shards[split]), str(skipped), f"{report.bytes[split] / 1e6:.1f}")
    for split in report.unlabeled_splits:
        table.add_row(split, "-", "-", "no labels", "-")
    console.print(table)
    total = sum(report.rows.values())
    rate = total / report.seconds if report.seconds else 0.0
    console.print(
        f"{total} rows in {report.seconds:.1f} s ({rate:.1f} samples/s); {report.resumed_shards} shard(s) reused from an earlier run.",
        highlight=False,
    )
    for item in report.skipped[:20]:
        line = f"{item['split']} {display_name(item['file'])}: {display_name(item['reason'])}"
        console.print(styled("skipped", "yellow", f" {line}"), highlight=False)
    if len(report.skipped) > 20:
        console.print(f"... and {len(report.skipped) - 20} more (see manifest.json)", highlight=False)
    for path in getattr(report, "displaced", []):  # reports from older Modal images lack the field
        console.print(styled("moved aside", "yellow", f" (not deleted): {display_name(path)}"), highlight=False)


def register(app: typer.Typer) -> None:
    app.command("precompute")(precompute)
