"""A real local HTTP server with programmable routes, for tests that fetch feeds and pages.

HTTP/1.1 with keep-alive on 127.0.0.1 and a free port, one thread per connection. A route
says what to answer (status, body, headers) and how (a delay before answering, a slow
drip of the body, chunked without Content-Length, gzip when the client accepts it) and can
answer conditional requests with 304. Every request is recorded. Kept lean so a benchmark
can send it thousands of requests: a response is one write, the route table a dict.
"""

from __future__ import annotations

import contextlib
import gzip as gzip_module
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the response starts
    drip: float = 0.0  # seconds between body bytes (a slow server); 0: all at once
    etag: str | None = None  # when set: 304 if If-None-Match matches
    last_modified: str | None = None  # when set: 304 if If-Modified-Since equals it
    gzip: bool = False  # compress the body when the client accepts gzip
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length
    # (body, its gzip), made on first use and remade if the body is replaced.
    _gzipped: tuple[bytes, bytes] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def gzipped_body(self) -> bytes:
        cached = self._gzipped
        if cached is None or cached[0] is not self.body:
            cached = (self.body, gzip_module.compress(self.body, compresslevel=6, mtime=0))
            self._gzipped = cached
        return cached[1]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    client: tuple[str, int]  # the client's address and port (tells connections apart)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison, as RFC 9110 wants for If-None-Match."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True
    timeout = 30  # an idle keep-alive connection ends after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, *, head: bool) -> None:
        owner = self.server.owner
        headers = {name.lower(): value for name, value in self.headers.items()}
        owner._record(RecordedRequest(self.command, self.path, headers, self.client_address[:2]))
        route = owner.routes.get(self.path) or owner.routes.get(self.path.partition("?")[0])
        if route is None:
            route = Route(status=404, body=b"not found")
        try:
            self._send(route, headers, head=head)
        except OSError:  # broken pipe, reset, timeout
            self.close_connection = True  # the client gave up; nothing to tell it

    def _send(self, route: Route, request: dict[str, str], *, head: bool) -> None:
        if route.delay:
            time.sleep(route.delay)
        status, body = route.status, route.body
        extra: dict[str, str] = {}
        if route.etag is not None:
            extra["ETag"] = route.etag
        if route.last_modified is not None:
            extra["Last-Modified"] = route.last_modified
        if "if-none-match" in request and route.etag is not None:
            not_modified = _etag_matches(request["if-none-match"], route.etag)
        else:
            not_modified = (
                route.last_modified is not None
                and request.get("if-modified-since") == route.last_modified
            )
        if not_modified:
            status, body = 304, b""
        elif route.gzip and "gzip" in request.get("accept-encoding", ""):
            body = route.gzipped_body()
            extra["Content-Encoding"] = "gzip"
            extra["Vary"] = "Accept-Encoding"
        extra.update(route.headers)
        names = {name.lower() for name in extra}
        if any(n.lower() == "connection" and v.lower() == "close" for n, v in extra.items()):
            self.close_connection = True
        bodyless = status == 304 or status < 200 or status == 204
        chunked = route.chunked and not bodyless
        if chunked:
            extra["Transfer-Encoding"] = "chunked"
        elif "content-length" not in names and status != 204 and status >= 200:
            extra["Content-Length"] = str(len(body))
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        lines.append(f"Date: {self.date_time_string()}")
        lines += [f"{name}: {value}" for name, value in extra.items()]
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if head or bodyless:
            body = b""
        write = self.wfile.write
        if not route.drip and not chunked:
            write(head_bytes + body)  # one write: no Nagle/delayed-ACK stall, fewer syscalls
            return
        write(head_bytes)
        if route.drip:
            for index in range(len(body)):
                time.sleep(route.drip)
                byte = body[index : index + 1]
                write(b"1\r\n" + byte + b"\r\n" if chunked else byte)
        elif body:
            write(b"%x\r\n%s\r\n" % (len(body), body))
        if chunked:
            write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up close()
    request_queue_size = 128  # benchmarks open many connections at once

    def __init__(self, owner: FeedServer, host: str) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((host, 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (a timeout, a refused body) resets the connection; that is
        # the test working, not a server fault worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """End every open connection, so no handler thread outlives the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)


class FeedServer:
    """A started server; ``url`` is its base ("http://127.0.0.1:PORT")."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server = _Server(self, host)
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"feedserver-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def route(self, path: str, route: Route | None = None, **fields: Any) -> str:
        """Serve ``route`` (or a Route made of ``fields``, or ``route`` with ``fields``
        replaced) at ``path``; returns the full URL. A path with a query string matches only
        that query; one without matches any."""
        if route is None:
            route = Route(**fields)
        elif fields:
            route = replace(route, **fields)
        self.routes[path] = route
        return self.url + path

    def redirect(self, path: str, to: str, status: int = 301) -> str:
        """Answer ``path`` with a redirect to ``to`` (absolute or relative, sent as given)."""
        return self.route(path, status=status, headers={"Location": to})

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(
                1 for r in self.requests if r.path == path or r.path.partition("?")[0] == path
            )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> FeedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A started FeedServer on 127.0.0.1, closed after the test."""
    server = FeedServer()
    try:
        yield server
    finally:
        server.close()
