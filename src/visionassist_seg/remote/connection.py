"""Fail fast, in one paragraph, when the Modal server cannot be reached.

The modal client retries a refused or unroutable connection for about a minute (its
channel retry budget is 63 s) and then raises a bare ``ConnectionError`` traceback.
Before a remote command builds anything, vaseg opens one plain TCP connection to the
server the client would use (each of modal's comma-separated fallback URLs), bounded by
`CONNECT_TIMEOUT_S` in all, and stops with what to check when none answers.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

from visionassist_seg.errors import VasegError

# Well under the 30 s a user waits before deciding it hangs; a healthy connect takes < 1 s.
CONNECT_TIMEOUT_S = 15.0


def modal_server_url() -> str:
    """Return the server URL the modal client uses (``MODAL_SERVER_URL`` or the profile's ``server_url``)."""
    from modal.config import config

    return str(config.get("server_url"))


def unreachable_error(server_url: str, reason: str) -> VasegError:
    """Return the error for a Modal server that does not answer, naming what to check."""
    return VasegError(
        f"Cannot reach the Modal server at {server_url} ({reason}). Check the internet connection and any "
        "firewall or proxy (Modal needs outbound connections to port 443), the MODAL_SERVER_URL variable or "
        "server_url in ~/.modal.toml if you set one, and https://status.modal.com; then rerun the command."
    )


def check_modal_reachable(server_url: str | None = None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Return when a TCP connection to the Modal server (or one of its fallbacks) opens within ``timeout`` s.

    Raises:
        VasegError: no server URL answered in time.
    """
    url = server_url or modal_server_url()
    deadline = time.monotonic() + timeout
    reasons = []
    for candidate in (part.strip() for part in url.split(",")):
        parts = urlsplit(candidate)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return  # a unix socket or an unusual URL: leave it to the client
        port = parts.port or (443 if parts.scheme == "https" else 80)
        reason = _try_connect(parts.hostname, port, max(0.1, deadline - time.monotonic()))
        if reason is None:
            return
        reasons.append(f"{parts.hostname}:{port}: {reason}")
    raise unreachable_error(url, "; ".join(reasons))


def _try_connect(host: str, port: int, timeout: float) -> str | None:
    """Return None when ``host:port`` accepts a connection within ``timeout`` s, else the reason it did not."""
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as err:
            outcome.append(err.strerror or type(err).__name__)

    # A thread bounds the name lookup too, which create_connection's timeout does not cover.
    worker = threading.Thread(target=attempt, name="vaseg-modal-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:.0f} s"
