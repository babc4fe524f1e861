"""The one error type for problems a user can cause and fix."""

from __future__ import annotations


class VasegError(Exception):
    """A user-facing error: the message names the file, the value and the fix.

    The CLI prints the message as one paragraph and exits with ``exit_code``;
    the traceback is shown only with ``VASEG_DEBUG=1``.
    """

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class VasegWarning(UserWarning):
    """Something a user should change but vaseg can go on with (an old setting name, a risky file mode).

    The CLI prints it as one ``Warning:`` line on stderr.
    """
