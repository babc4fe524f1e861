"""Fail fast, in one paragraph, when the Modal server cannot be reached.

The modal client retries a refused or unroutable connection for about a minute (its
channel retry budget is 63 s) and then raises a bare ``ConnectionError`` traceback.
Before a remote command builds anything, vaseg opens one connection the way the client
would, bounded by `CONNECT_TIMEOUT_S` in all: to the proxy when modal would use one
(``HTTPS_PROXY``; modal 1.6 honours it), else to the server itself, with the TLS
handshake the client would make (certifi's CA bundle, ALPN h2) for ``https`` URLs, so an
intercepting middlebox that accepts TCP but not TLS is caught too. Each of modal's
comma-separated fallback URLs is tried; the first that answers ends the check.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from visionassist_seg.errors import VasegError

# Well under the 30 s a user waits before deciding it hangs; a healthy connect takes < 1 s.
CONNECT_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class _Target:
    """Where the probe connects, and the host whose certificate it checks (None: no TLS)."""

    host: str
    port: int
    tls_host: str | None
    via: str  # how the target is named in the error


def modal_server_url() -> str:
    """Return the server URL the modal client uses (``MODAL_SERVER_URL`` or the profile's ``server_url``)."""
    from modal.config import config

    return str(config.get("server_url"))


def unreachable_error(server_url: str, reason: str) -> VasegError:
    """Return the error for a Modal server that does not answer, naming what to check."""
    return VasegError(
        f"Cannot reach the Modal server at {server_url} ({reason}). Check the internet connection and any "
        "firewall or proxy (Modal needs outbound HTTPS to port 443; set HTTPS_PROXY if you must use a proxy), "
        "the MODAL_SERVER_URL variable or server_url in ~/.modal.toml if you set one, and "
        "https://status.modal.com; then rerun the command."
    )


def check_modal_reachable(server_url: str | None = None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Return when the Modal server (or one of its fallbacks) accepts a connection within ``timeout`` s.

    Raises:
        VasegError: no server URL answered in time.
    """
    url = server_url or modal_server_url()
    deadline = time.monotonic() + timeout
    reasons = []
    for candidate in (part.strip() for part in url.split(",")):
        target = _target(candidate)
        if target is None:
            return  # a unix socket or an unusual URL: leave it to the client
        reason = _try_connect(target, max(0.1, deadline - time.monotonic()))
        if reason is None:
            return
        reasons.append(f"{target.via}: {reason}")
    raise unreachable_error(url, "; ".join(reasons))


def _target(url: str) -> _Target | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    use_tls = parts.scheme == "https"
    port = parts.port or (443 if use_tls else 80)
    proxy = _proxy_for(parts.hostname, use_tls)
    if proxy is not None:
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if proxy_parts.hostname:
            proxy_port = proxy_parts.port or (443 if proxy_parts.scheme == "https" else 80)
            return _Target(proxy_parts.hostname, proxy_port, None, f"proxy {proxy_parts.hostname}:{proxy_port}")
    return _Target(parts.hostname, port, parts.hostname if use_tls else None, f"{parts.hostname}:{port}")


def _proxy_for(host: str, use_tls: bool) -> str | None:
    """Return the proxy URL modal would connect through (its rule: environment proxies, NO_PROXY, disable_api_proxy)."""
    from modal.config import config

    if config.get("disable_api_proxy") or urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get("https" if use_tls else "http") or proxies.get("all") or None


def _try_connect(target: _Target, timeout: float) -> str | None:
    """Return None when ``target`` accepts a connection (and TLS) within ``timeout`` s, else the reason it did not."""
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((target.host, target.port), timeout=timeout) as connection:
                if target.tls_host is not None:
                    _handshake(connection, target.tls_host)
            outcome.append(None)
        except ssl.SSLError as err:
            outcome.append(f"TLS handshake failed: {err.reason or err}")
        except OSError as err:
            outcome.append(err.strerror or str(err) or type(err).__name__)

    # A thread bounds the name lookup too, which create_connection's timeout does not cover.
    worker = threading.Thread(target=attempt, name="vaseg-modal-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:.0f} s"


def _handshake(connection: socket.socket, host: str) -> None:
    """Complete the TLS handshake the modal client (grpclib) makes: certifi's CAs, HTTP/2 via ALPN."""
    try:
        import certifi

        cafile: str | None = certifi.where()
    except ImportError:  # grpclib falls back to the system store the same way
        cafile = None
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["h2"])
    with context.wrap_socket(connection, server_hostname=host):
        pass
