"""`vaseg config`: print the effective settings."""

from __future__ import annotations

import typer

from visionassist_seg.cli._common import ConfigOpt


def config(config: ConfigOpt = None) -> None:
    """Print the effective settings by section (CLI > VASEG_* env > vaseg.toml > defaults), secrets masked."""
    from rich.table import Table

    from visionassist_seg.console import console
    from visionassist_seg.settings import SECTIONS, Settings, load_settings

    values = load_settings(config).masked_dump()
    table = Table(title="vaseg settings")
    table.add_column("section", no_wrap=True)
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("description")
    for section, names in SECTIONS.items():
        for index, name in enumerate(names):
            table.add_row(section if index == 0 else "", name, str(values[name]), Settings.model_fields[name].description or "")
        table.add_section()
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("config")(config)
