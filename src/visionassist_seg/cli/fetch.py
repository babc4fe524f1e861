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
    from rich.markup import escape

    from visionassist_seg.console import console, err_console
    from visionassist_seg.remote import fetch_run
    from visionassist_seg.settings import load_settings

    settings = load_settings(config)
    result = fetch_run(settings, name, output_dir)
    status = (result.status or {}).get("status", "unknown")
    if status == "running":
        err_console.print(
            f"[yellow]Run {escape(name)} is still running on Modal[/]: these are the files written so far. "
            f"Run `vaseg fetch {escape(name)}` again when it has finished.",
            highlight=False,
        )
    elif status == "failed":
        err_console.print(
            f"[red]Run {escape(name)} failed on Modal[/] "
            f"({escape(str(result.status.get('error', 'no error recorded')))}); "
            "copied what it wrote.",
            highlight=False,
        )
    console.print(
        f"Fetched run {escape(name)} ({len(result.files)} files, status {escape(str(status))}) into "
        f"{escape(str(result.run_dir))}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("fetch")(fetch)
