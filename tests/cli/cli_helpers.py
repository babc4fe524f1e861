"""What the CLI tests share: one CliRunner, and a command's output with rich's line wrapping undone."""

from __future__ import annotations

from typer.testing import CliRunner

runner = CliRunner()


def output_text(result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())
