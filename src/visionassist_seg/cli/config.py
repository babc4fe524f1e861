"""`vaseg config`: print the effective settings."""

from __future__ import annotations

import typer

from visionassist_seg.cli._common import ConfigOpt


def config(config: ConfigOpt = None) -> None:
    """Print the effective settings (CLI > VASEG_* env > vaseg.toml > defaults), secrets masked."""
    from rich.table import Table

    from visionassist_seg.console import console
    from visionassist_seg.settings import Settings, load_settings

    settings = load_settings(config)
    table = Table(title="vaseg settings")
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("description")
    for name, value in settings.masked_dump().items():
        table.add_row(name, str(value), Settings.model_fields[name].description or "")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("config")(config)
