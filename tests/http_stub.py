"""A scripted HTTP server on 127.0.0.1 for tests that run the real Kaggle and Hub clients.

The standard library's `ThreadingHTTPServer` in a daemon thread: each test registers
routes (method + path regex -> reply) and reads back what the client asked for. An
unrouted request gets 404 and is recorded too, so a test sees every call the library
made. Everything is bounded: sockets time out, the server stops when the block exits.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

SOCKET_TIMEOUT_S = 10


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def ndjson(self) -> list[Any]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


@dataclass
class Reply:
    """What the server answers: status, body (bytes, or JSON for anything else) and headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        if isinstance(self.body, bytes):
            return self.body, {"Content-Type": "application/octet-stream", **self.headers}
        return json.dumps(self.body if self.body is not None else {}).encode(), {
            "Content-Type": "application/json",
            **self.headers,
        }


Responder = Callable[[Recorded], Reply]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern
    respond: Responder


class StubServer:
    """Serve scripted replies on 127.0.0.1 (``port`` 0 picks a free one) while the ``with`` block runs."""

    def __init__(self, port: int = 0) -> None:
        self.routes: list[_Route] = []
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, path_regex: str, respond: Responder | Reply) -> None:
        """Answer ``method`` requests whose path fully matches ``path_regex``; later routes win."""
        responder = respond if callable(respond) else (lambda request, reply=respond: reply)
        self.routes.insert(0, _Route(method.upper(), re.compile(path_regex), responder))

    def requested(self, method: str, path_regex: str) -> list[Recorded]:
        """Return the recorded requests matching ``method`` and ``path_regex``."""
        pattern = re.compile(path_regex)
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and pattern.fullmatch(r.path)]

    def __enter__(self) -> "StubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=SOCKET_TIMEOUT_S)

    def _answer(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            routes = list(self.routes)
        for route in routes:
            if route.method == request.method and route.pattern.fullmatch(request.path):
                return route.respond(request)
        return Reply(404, {"error": f"no stub route for {request.method} {request.path}"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            timeout = SOCKET_TIMEOUT_S
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                recorded = Recorded(self.command, parts.path, parse_qs(parts.query), dict(self.headers), self._body())
                reply = stub._answer(recorded)
                payload, headers = reply.encoded()
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().strip() or b"0", 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _serve

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

        return Handler
