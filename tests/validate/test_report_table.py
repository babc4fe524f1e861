"""The report table shows targets and details as typed: rich markup in a file name is not interpreted."""

from __future__ import annotations

from rich.console import Console

from visionassist_seg.validate.report import FAIL, CheckRow, ValidationReport


def test_markup_in_names_is_shown_as_typed():
    report = ValidationReport("/data/[bold]eyes[/]", [CheckRow("structure: splits", FAIL, "data/[red]x[/].parquet is missing")])
    console = Console(record=True, width=200, color_system=None)
    console.print(report.to_table())
    text = console.export_text()
    assert "/data/[bold]eyes[/]" in text and "data/[red]x[/].parquet is missing" in text
