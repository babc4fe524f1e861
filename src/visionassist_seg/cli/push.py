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
    """Publish a precomputed dataset folder to a Hub dataset repository, so that the Hub copy equals it.

    Uploads the folder as it is (README.md, the parquet files in whatever layout,
    manifest.json), leaving out only vaseg's private state (.vaseg/, .vaseg.lock, temporary .*.tmp files). Dataset
    files on the Hub that the folder no longer has (shards of an earlier push with another
    shard size) are deleted in the same commit. Runs the structure, schema and value checks
    first (refuses a failing dataset unless --force). Token: HF_TOKEN (or VASEG_HF_TOKEN) or
    the saved `hf auth login`. The upload is resumable: rerun after an interruption and
    only what is missing is sent. --dataset defaults to the setting `[dataset] dir` (the folder
    `vaseg validate` checks by default).

    Example: `vaseg push --dataset precompute_output --hf-repo yourname/openeds-precomputed`
    """
    from visionassist_seg.console import console
    from visionassist_seg.pipeline.push import push_dataset
    from visionassist_seg.settings import load_settings

    settings = load_settings(
        config, workers=workers, dataset={"dir": dataset}, hub={"repo": hf_repo, "private": private, "revision": revision}
    )
    folder = settings.dataset.dir
    url = push_dataset(folder, settings, force=force, message=message)
    console.print(f"Pushed {str(folder)} to {url}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("push")(push)
