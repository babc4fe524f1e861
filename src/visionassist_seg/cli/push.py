"""`vaseg push`: validate a precomputed dataset and publish it to the Hugging Face Hub."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from visionassist_seg.cli._common import ConfigOpt, DatasetDirOpt, RepoOpt, RevisionOpt, WorkersOpt


def push(
    dataset: DatasetDirOpt = None,
    hf_repo: RepoOpt = None,
    private: Annotated[
        Optional[bool], typer.Option("--private", help="Create the Hub repository as private.", show_default=False)
    ] = None,
    revision: RevisionOpt = None,
    message: Annotated[
        Optional[str], typer.Option("--message", "-m", help="Commit message on the Hub.", show_default=False)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Push even if the dataset fails validation.")] = False,
    workers: WorkersOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Upload data/*.parquet and README.md of a precomputed dataset to a Hub dataset repository.

    Runs the structure, schema and value checks first (refuses a failing dataset unless
    --force). Token: HF_TOKEN (or VASEG_HF_TOKEN) or the saved `hf auth login`. The
    upload is resumable: rerun after an interruption and only what is missing is sent.
    --dataset defaults to the settings' output_dir.
    """
    from visionassist_seg.console import console
    from visionassist_seg.hub import push_dataset
    from visionassist_seg.settings import load_settings

    settings = load_settings(
        config, output_dir=dataset, hf_repo=hf_repo, hf_private=private, hf_revision=revision, workers=workers
    )
    url = push_dataset(settings.output_dir, settings, force=force, message=message)
    console.print(f"Pushed {settings.output_dir} to {url}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("push")(push)
