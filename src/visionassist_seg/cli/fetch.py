"""`vaseg fetch NAME`: copy a remote training run from the Modal Volume."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from visionassist_seg.cli._common import ConfigOpt


def fetch(
    name: Annotated[str, typer.Argument(help="Run name: the last part of the run folder (runs/NAME on the Volume).")],
    output_dir: Annotated[
        Optional[Path],
        typer.Option(
            "--output-dir",
            "-o",
            help="Local folder to copy the run into. (default: NAME next to the configured run folder, e.g. runs/NAME)",
            show_default=False,
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Copy a finished remote training run (checkpoints, ONNX, metrics, plots) from the Modal Volume."""
    from visionassist_seg.console import console, err_console, styled
    from visionassist_seg.remote import fetch_run
    from visionassist_seg.settings import load_settings

    settings = load_settings(config)
    result = fetch_run(settings, name, output_dir)
    status = (result.status or {}).get("status", "unknown")
    if status == "running":
        err_console.print(
            styled(f"Run {name} is still running on Modal", "yellow", ": these are the files written so far. "
            f"Run `vaseg fetch {name}` again when it has finished."),
            highlight=False,
        )
    elif status == "failed":
        err_console.print(
            styled(f"Run {name} failed on Modal", "red", f" ({result.status.get('error', 'no error recorded')}); "
            "copied what it wrote."),
            highlight=False,
        )
    console.print(
        f"Fetched run {name} ({len(result.files)} files, status {str(status)}) into "
        f"{str(result.run_dir)}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("fetch")(fetch)
