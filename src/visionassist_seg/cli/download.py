"""`vaseg download`: fetch raw OpenEDS from Kaggle, or write the built-in synthetic tree."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from visionassist_seg.cli._common import ConfigOpt, RawDirOpt, SeedOpt, SourceOpt


def download(
    raw_dir: RawDirOpt = None,
    source: SourceOpt = None,
    count: Annotated[
        Optional[int], typer.Option("--count", min=1, help="Synthetic source: train samples. [default: 64]", show_default=False)
    ] = None,
    seed: SeedOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if a complete download exists.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Download raw OpenEDS (Kaggle: soumicksarker/openeds-dataset) into --raw-dir.

    Idempotent: a complete download is not fetched again (use --force, which also replaces
    a partial download an interrupted run left). Credentials are checked before anything is
    contacted; Kaggle's answers are explained: 404 is the dataset id, 401 the credentials,
    403 the credentials or the dataset's terms. `--source synthetic` writes built-in IR-like
    eye images in the same layout, with no credentials or network.

    Example: `vaseg download --raw-dir openeds_raw`
    """
    from rich.text import Text

    from visionassist_seg.console import console, err_console, styled
    from visionassist_seg.kaggle import ensure_raw, permission_warning
    from visionassist_seg.settings import load_settings

    settings = load_settings(config, seed=seed, raw={"dir": raw_dir, "source": source, "synthetic_count": count})
    if settings.raw.source == "kaggle" and (warning := permission_warning()):
        err_console.print(styled("Warning:", "yellow", f" {warning}"), highlight=False)
    # A str status is parsed as markup whatever the console says: pass Text so the path shows as typed.
    with err_console.status(Text(f"Preparing raw data ({settings.raw.source}) in {settings.raw.dir} ...")):
        root = ensure_raw(settings, force=force)
    console.print(f"Raw OpenEDS ({settings.raw.source}) ready: {str(root)}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("download")(download)
