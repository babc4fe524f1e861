"""The shared rich consoles (results on stdout, progress and diagnostics on stderr) and progress bars.

Both consoles have rich markup switched off: vaseg prints paths, file names and settings
values that may contain ``[bold]`` or ``[/]``, and those must be shown as typed, never
parsed as markup (or raise rich's MarkupError). Style is given explicitly instead: with
`styled` (or a rich `Text`), never by writing tags into a string.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(markup=False)
err_console = Console(stderr=True, markup=False)


def styled(head: str, style: str, tail: str = "") -> Text:
    """Return ``head`` in ``style`` followed by plain ``tail``; neither is parsed as markup."""
    return Text.assemble((head, style), tail)


class RateColumn(ProgressColumn):
    """Shows the task's speed in items per second."""

    def __init__(self, unit: str = "samples") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:6.1f} {self.unit}/s" if speed else f"     ? {self.unit}/s", style="progress.data.speed")


@contextmanager
def item_progress(total: int, description: str, enabled: bool = True, unit: str = "samples") -> Iterator[Callable[[int], None]]:
    """Show a progress bar with rate and ETA on stderr; yield ``advance(n)``."""
    if not enabled:
        yield lambda n=1: None
        return
    columns = (
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        task_id = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task_id, n)
