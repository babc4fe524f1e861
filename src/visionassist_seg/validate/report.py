"""The validation report: one row per check (check, result, details), as a rich table or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from visionassist_seg import atomic_write
from visionassist_seg.errors import VasegError

PASS = "pass"
FAIL = "fail"
LEGACY = "legacy"  # the older published format: readable (the trainer converts it), not failing
WARN = "warn"
SKIP = "skip"
INFO = "info"

_STYLES = {PASS: "green", FAIL: "bold red", LEGACY: "yellow", WARN: "yellow", SKIP: "dim", INFO: "cyan"}
# Details of a failing check list at most this many offending rows; the count says how many there are.
MAX_LISTED = 5


@dataclass(frozen=True)
class CheckRow:
    """One line of the report: which check, its result (pass/fail/legacy/warn/skip/info) and why."""

    check: str
    result: str
    details: str


@dataclass(frozen=True)
class Failure:
    """One offending dataset row (or shard when ``row`` is None) found by a check."""

    check: str
    split: str
    row: int | None
    filename: str | None
    message: str

    def describe(self) -> str:
        """Return ``split row N (filename): message``, the form every failing detail uses."""
        where = self.split if self.row is None else f"{self.split} row {self.row}"
        if self.filename is not None:
            where += f" ({self.filename})"
        return f"{where}: {self.message}"


def failure_row(check: str, failures: list[Failure], passed_details: str) -> CheckRow:
    """Return a passing row with ``passed_details`` when there are no failures, else a failing row listing them."""
    if not failures:
        return CheckRow(check, PASS, passed_details)
    listed = "; ".join(f.describe() for f in failures[:MAX_LISTED])
    more = f"; and {len(failures) - MAX_LISTED} more" if len(failures) > MAX_LISTED else ""
    count = f"{len(failures)} problem{'s' if len(failures) != 1 else ''}: "
    return CheckRow(check, FAIL, count + listed + more)


@dataclass
class ValidationReport:
    """Everything `vaseg validate` found about one dataset.

    ``passed`` is True when no row failed (legacy, warn, skip and info rows do not fail).
    """

    target: str
    rows: list[CheckRow] = field(default_factory=list)
    statistics: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(row.result != FAIL for row in self.rows)

    @property
    def legacy(self) -> bool:
        """True when the dataset is in the legacy published format."""
        return any(row.result == LEGACY for row in self.rows)

    def failed_rows(self) -> list[CheckRow]:
        """Return the rows whose result is fail."""
        return [row for row in self.rows if row.result == FAIL]

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (same content as the table, plus raw statistics)."""
        return {
            "target": self.target,
            "passed": self.passed,
            "legacy": self.legacy,
            "checks": [asdict(row) for row in self.rows],
            "statistics": self.statistics,
        }

    def to_json(self) -> str:
        """Return the report as an indented JSON document."""
        return json.dumps(self.to_dict(), indent=2)

    def write_json(self, path: Path) -> None:
        """Write `to_json()` to ``path`` atomically, creating its folder.

        Raises:
            VasegError: ``path`` is a folder or cannot be written; no temporary file is left behind.
        """
        write_text_atomic(Path(path), self.to_json() + "\n", what="the JSON report", option="--json")

    def to_table(self):  # -> rich.table.Table
        """Return the report as a rich table with one line per check."""
        from rich.table import Table

        from rich.text import Text

        # Text, not markup: the target and details quote paths and file names as typed.
        verdict = Text("passed", "green") if self.passed else Text("FAILED", "bold red")
        table = Table(title=Text.assemble(f"vaseg validate: {self.target} (", verdict, ")"), show_lines=False)
        table.add_column("check", no_wrap=True)
        table.add_column("result", no_wrap=True)
        table.add_column("details", overflow="fold")
        for row in self.rows:
            style = _STYLES.get(row.result, "")
            table.add_row(Text(row.check), Text(row.result, style), Text(row.details))
        return table


def write_text_atomic(path: Path, text: str, *, what: str, option: str) -> None:
    """Write ``text`` to ``path`` in one step (readers see the old file or the new one), creating its folder.

    The text goes to a temporary sibling that is renamed over ``path``; on any failure the
    temporary file is removed and the error names ``path`` and the ``option`` that chose it.

    Raises:
        VasegError: ``path`` is a folder, or its folder cannot be created or written.
    """
    if path.is_dir():
        raise VasegError(f"{option} {path} is a folder; {what} needs a file path there, e.g. {path / 'report.json'}.")
    try:
        atomic_write.write_text_atomic(path, text)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise VasegError(f"Cannot write {what} to {path}: {reason}. Pass {option} a file in a folder you can write to.") from None
