"""The `vaseg` Typer app: registers one module per subcommand and maps errors to exit codes."""

from __future__ import annotations

import os
import warnings

import typer
from typer.core import TyperGroup

from visionassist_seg.errors import VasegError, VasegWarning


class _VasegGroup(TyperGroup):
    """Turns a `VasegError` into a one-paragraph message and its exit code.

    Messages are plain text (they quote paths and values as the user typed them): the
    printer styles only its own "Error:" prefix and never parses the message as markup.
    """

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default", VasegWarning)  # each once per command
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except VasegError as err:
            if os.environ.get("VASEG_DEBUG") == "1":
                raise
            from visionassist_seg.console import err_console, styled

            # Undecodable file-name bytes (surrogate escapes) print as \xNN instead of crashing the print.
            message = err.message.encode("utf-8", "backslashreplace").decode("utf-8")
            err_console.print(styled("Error:", "bold red", f" {message}"), highlight=False, soft_wrap=True)
            raise typer.Exit(err.exit_code) from None


_show_other_warning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
    """Print a `VasegWarning` as one plain-text ``Warning:`` line on stderr; other warnings as Python does."""
    if not issubclass(category, VasegWarning):
        return _show_other_warning(message, category, filename, lineno, file, line)
    from visionassist_seg.console import err_console, styled

    err_console.print(styled("Warning:", "yellow", f" {message}"), highlight=False, soft_wrap=True)


app = typer.Typer(
    name="vaseg",
    cls=_VasegGroup,
    help="VisionAssist segmentation toolkit: OpenEDS download, preprocessing, validation, "
    "Hub publishing and ShallowNet training. Set VASEG_DEBUG=1 for tracebacks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)


# One module per subcommand; each exposes `register(app)`. Add a line to add a command.
_COMMAND_MODULES = (
    "config",
    "download",
    "precompute",
    "fetch",
    "validate",
    "push",
    "train",
    "export",
    "demo",
    "evaluate",
    "predict",
)


def _register() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(f"visionassist_seg.cli.{name}").register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
