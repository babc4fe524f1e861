"""`vaseg config`: print the effective settings."""

from __future__ import annotations

import typer

from visionassist_seg.cli._common import ConfigOpt


def config(config: ConfigOpt = None) -> None:
    """Print the effective settings by section (CLI > VASEG_* env > vaseg.toml > defaults), secrets masked.

    Each row names the setting as vaseg.toml writes it (`[train] epochs`) and its environment
    variable (`VASEG_TRAIN__EPOCHS`).

    Example: `vaseg config --config ./vaseg.toml`
    """
    from rich.table import Table

    from visionassist_seg.console import console
    from visionassist_seg.settings import SECTION_MODELS, Settings, env_name, load_settings

    values = load_settings(config).masked_dump()
    table = Table(title="vaseg settings")
    table.add_column("section", no_wrap=True)
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("environment variable", no_wrap=True)
    table.add_column("description")
    top = [name for name in Settings.model_fields if name not in SECTION_MODELS]
    for index, name in enumerate(top):
        table.add_row("" if index else "(top)", name, str(values[name]), env_name(name), Settings.model_fields[name].description or "")
    for section, model in SECTION_MODELS.items():
        table.add_section()
        for index, (name, info) in enumerate(model.model_fields.items()):
            value = str(values[section][name])
            variable = "HF_TOKEN" if (section, name) == ("hub", "token") else env_name(f"{section}.{name}")
            table.add_row("" if index else f"[{section}]", name, value, variable, info.description or "")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("config")(config)
