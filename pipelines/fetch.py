"""HTTP fetches of feeds and pages, bounded in size, time and reach.

One :class:`Fetcher` (one httpx client with a keep-alive pool, safe to share between
threads) does conditional GETs and follows redirects itself, so every hop is visible to the
caller (a feed whose URL moved permanently gets its stored URL updated) and every hop's
connection goes through :class:`~pipelines.netguard.GuardedBackend`. Bodies are read raw and
decoded here, a step at a time, so neither a huge body nor a small compressed one that
inflates to gigabytes is ever held in memory. Non-2xx statuses are results, not errors: the
caller decides what 404, 410 or 429 mean for a feed.
"""

from __future__ import annotations

import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, get_args

import brotli
import httpcore
import httpx

from pipelines.netguard import BlockedAddress, GuardedBackend

DEFAULT_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_STATUSES = frozenset({301, 308})

_STEP = 64 * 1024  # decoded bytes per decompression step: the overshoot past the cap
# Sized for about 8 fetching threads, with room for redirects to other hosts.
_POOL = httpx.Limits(max_connections=32, max_keepalive_connections=16, keepalive_expiry=30)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    connect_timeout: float = 10
    read_timeout: float = 30  # between two reads
    total_timeout: float = 60  # the whole fetch, redirects included
    max_bytes: int = 15 * 1024 * 1024  # on the wire
    max_decompressed_bytes: int = 50 * 1024 * 1024
    max_redirects: int = 5
    allow_private_networks: bool = False
    user_agent: str = "feed-ingest/0.1"


@dataclass(frozen=True, slots=True)
class Conditional:
    """Validators from the previous fetch of the same URL."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class Hop:
    url: str  # the URL that answered with a redirect
    status: int
    location: str  # where it pointed, made absolute


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str  # requested
    final_url: str  # after redirects
    status: int
    headers: Mapping[str, str]  # final response, lower-case names, repeats joined by ", "
    body: bytes  # content-decoded; b"" for 304
    redirects: tuple[Hop, ...]
    bytes_on_wire: int  # body bytes as received, before decoding
    elapsed: float  # seconds

    @property
    def permanent_redirect(self) -> str | None:
        """The final URL when every hop was permanent (301/308), else None. One temporary hop
        on the way means the original URL is still the one to keep."""
        if self.redirects and all(hop.status in PERMANENT_STATUSES for hop in self.redirects):
            return self.final_url
        return None

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")


FetchErrorKind = Literal[
    "timeout",
    "connect",
    "dns",
    "blocked",
    "too_large",
    "decompression_bomb",
    "too_many_redirects",
    "bad_url",
    "protocol",
    "tls",
]
FETCH_ERROR_KINDS: frozenset[str] = frozenset(get_args(FetchErrorKind))
# Worth retrying later: the same request may well succeed. The others will fail the same way.
TRANSIENT_KINDS: frozenset[str] = frozenset({"timeout", "connect", "dns", "protocol"})


class FetchError(Exception):
    """A fetch that produced no HTTP response to return."""

    def __init__(self, kind: FetchErrorKind, url: str, message: str) -> None:
        super().__init__(f"{message} ({url})")  # the kind is an attribute, not repeated here
        self.kind: FetchErrorKind = kind
        self.url = url
        self.message = message
        self.transient = kind in TRANSIENT_KINDS

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.kind, self.url, self.message))


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose every TCP connect is guarded.

    httpx has no public way to choose the network backend. It keeps its httpcore pool in
    ``_pool`` (all that ``handle_request`` and ``close`` use); swapping that one attribute for
    a pool built with httpcore's public constructor is the smallest reach into internals,
    smaller than copying httpx's request and exception translation into a transport of our
    own. The type check makes an httpx change fail at start, not run unguarded.
    """

    def __init__(self, backend: httpcore.NetworkBackend, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("httpx.HTTPTransport no longer keeps an httpcore pool in _pool")
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


class Fetcher:
    """Fetches URLs with one shared client. Thread-safe; close it (or use ``with``) when done.

    ``backend`` replaces the guarded network backend; tests use it to narrow the guard.
    """

    def __init__(
        self, limits: FetchLimits, *, backend: httpcore.NetworkBackend | None = None
    ) -> None:
        self.limits = limits
        if backend is None:
            backend = GuardedBackend(limits.allow_private_networks)
        self._client = httpx.Client(
            transport=_GuardedTransport(backend, _POOL),
            follow_redirects=False,
            trust_env=False,  # no proxies or .netrc from the environment
            timeout=self._timeout(limits.total_timeout),
            headers={
                "User-Agent": limits.user_agent,
                "Accept": DEFAULT_ACCEPT,
                "Accept-Encoding": "gzip, deflate, br",
            },
        )
        # One client serves every feed of every site: a shared cookie jar would carry one
        # site's cookies into the next request (and parsing Set-Cookie costs a quarter of
        # a fetch). A feed that needs a cookie gets it from its configured headers.
        self._client._cookies = _NoCookies()  # httpx has no switch for this

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _timeout(self, remaining: float) -> httpx.Timeout:
        """Per-request timeouts, none longer than what is left of the total."""
        limits = self.limits
        remaining = max(remaining, 0.001)
        return httpx.Timeout(
            connect=min(limits.connect_timeout, remaining),
            read=min(limits.read_timeout, remaining),
            write=min(limits.read_timeout, remaining),
            pool=min(limits.connect_timeout, remaining),
        )

    def fetch(
        self,
        url: str,
        *,
        conditional: Conditional | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> FetchResult:
        """GET ``url``, following up to ``max_redirects`` redirects. Returns the final
        response whatever its status; raises :class:`FetchError` when there is none."""
        started = time.monotonic()
        deadline = started + self.limits.total_timeout
        request_headers = _request_headers(conditional, headers)
        hops: list[Hop] = []
        current = url
        try:
            target = _checked_url(current, url)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FetchError("timeout", url, "total timeout passed between redirects")
                request = self._client.build_request(
                    "GET", target, headers=request_headers, timeout=self._timeout(remaining)
                )
                response = self._client.send(request, stream=True)
                try:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECT_STATUSES and location:
                        # The body of a redirect is not read; closing it unread costs the
                        # connection, which is rare enough not to matter.
                        next_url = target.join(location)
                        hops.append(Hop(current, response.status_code, str(next_url)))
                        if len(hops) > self.limits.max_redirects:
                            raise FetchError(
                                "too_many_redirects",
                                url,
                                f"more than {self.limits.max_redirects} redirects",
                            )
                        next_url = _checked_url(str(next_url), url)
                        if _origin(next_url) != _origin(target):
                            # Credentials the caller meant for one site go no further.
                            request_headers.pop("authorization", None)
                            request_headers.pop("cookie", None)
                        current, target = str(next_url), next_url
                        continue
                    body, on_wire = self._read_body(response, url, deadline)
                    return FetchResult(
                        url=url,
                        final_url=current,
                        status=response.status_code,
                        headers=dict(response.headers.items()),
                        body=body,
                        redirects=tuple(hops),
                        bytes_on_wire=on_wire,
                        elapsed=time.monotonic() - started,
                    )
                finally:
                    response.close()
        except FetchError:
            raise
        except Exception as exc:
            error = _classify(exc, url)
            if error is None:
                raise
            raise error from exc

    def _read_body(self, response: httpx.Response, url: str, deadline: float) -> tuple[bytes, int]:
        """The decoded body and its size on the wire, within the limits."""
        limits = self.limits
        # A 304 may declare the size of the representation it does not send.
        declared = "" if response.status_code == 304 else response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_bytes:
            raise FetchError(
                "too_large", url, f"Content-Length {declared} over {limits.max_bytes} bytes"
            )
        decode = _Decoding(
            response.headers.get("content-encoding", ""), url, limits.max_decompressed_bytes
        )
        parts: list[bytes] = []
        on_wire = 0
        # No chunk size: httpx would hold back pieces until it had that many bytes, hiding a
        # dripping server from the deadline check. Each read is at most 64 KiB (httpcore).
        for chunk in response.iter_raw():
            on_wire += len(chunk)
            if on_wire > limits.max_bytes:
                raise FetchError("too_large", url, f"body over {limits.max_bytes} bytes")
            # Each read is bounded by the read timeout; this bounds a server that keeps
            # every read just under it.
            if time.monotonic() > deadline:
                raise FetchError(
                    "timeout", url, f"body not complete after {limits.total_timeout} s"
                )
            parts.extend(decode(chunk))
        return b"".join(parts), on_wire


def _request_headers(
    conditional: Conditional | None, headers: Mapping[str, str] | None
) -> dict[str, str]:
    """Per-request headers (lower-case names); the client adds User-Agent, Accept and
    Accept-Encoding unless these override them."""
    result: dict[str, str] = {}
    if conditional is not None:
        if conditional.etag:
            result["if-none-match"] = conditional.etag
        if conditional.last_modified:
            result["if-modified-since"] = conditional.last_modified
    for name, value in (headers or {}).items():
        result[name.lower()] = value
    return result


def _checked_url(url: str, requested: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise FetchError("bad_url", requested, f"invalid URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchError("bad_url", requested, f"only http and https, not {url!r}")
    if not parsed.raw_host:
        raise FetchError("bad_url", requested, f"no host in {url!r}")
    return parsed


def _origin(url: httpx.URL) -> tuple[str, bytes, int | None]:
    return url.scheme, url.raw_host, url.port


# --- content decoding ------------------------------------------------------------------


class _Inflate:
    """gzip or deflate, at most ``_STEP`` bytes of output per step."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        self._head = b""  # deflate: the first bytes, until the header tells the flavour

    def __call__(self, data: bytes) -> Iterator[bytes]:
        if self._obj is None:
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return
            # "deflate" is meant to be zlib-wrapped (RFC 9110); some servers send it raw.
            zlib_header = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
        obj = self._obj
        while not obj.eof:
            out = obj.decompress(data, _STEP)
            if out:
                yield out
            data = obj.unconsumed_tail
            if obj.eof:
                rest = obj.unused_data
                if self._gzip and rest[:2] == b"\x1f\x8b":  # another gzip member follows
                    self._obj = obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    data = rest
                continue  # after the stream, trailing bytes are ignored (as browsers do)
            if not data and len(out) < _STEP:
                return  # input used up and nothing held back: wait for the next chunk


class _Brotli:
    """brotli, about ``_STEP`` bytes of output per step."""

    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def __call__(self, data: bytes) -> Iterator[bytes]:
        obj = self._obj
        if obj.is_finished():
            return
        out = obj.process(data, output_buffer_limit=_STEP)
        if out:
            yield out
        # With the limit reached, output waits inside the decompressor (even while it says it
        # can accept more input): ask with empty input until nothing more comes.
        while not obj.is_finished() and (out or not obj.can_accept_more_data()):
            out = obj.process(b"", output_buffer_limit=_STEP)
            if out:
                yield out


class _Decoding:
    """Undoes a Content-Encoding header piece by piece. Every layer's output is counted
    against ``limit`` as it is produced, so no layer of a stack can inflate unbounded."""

    def __init__(self, content_encoding: str, url: str, limit: int) -> None:
        self._url = url
        self._limit = limit
        tokens = [t.strip().lower() for t in content_encoding.split(",")]
        self._layers: list[Callable[[bytes], Iterator[bytes]]] = []
        for token in reversed(tokens):  # the last one applied comes off first
            if token in ("gzip", "x-gzip"):
                self._layers.append(_Inflate(gzip=True))
            elif token == "deflate":
                self._layers.append(_Inflate(gzip=False))
            elif token == "br":
                self._layers.append(_Brotli())
            elif token not in ("identity", ""):
                raise FetchError("protocol", url, f"unsupported Content-Encoding {token!r}")
        if len(self._layers) > 3:
            raise FetchError("protocol", url, f"too many encodings: {content_encoding!r}")
        self._sizes = [0] * len(self._layers)

    def __call__(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from self._through(0, data)
        except (zlib.error, brotli.error) as exc:
            raise FetchError("protocol", self._url, f"cannot decode body: {exc}") from exc

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._layers):
            yield data
            return
        for piece in self._layers[index](data):
            self._sizes[index] += len(piece)
            if self._sizes[index] > self._limit:
                raise FetchError(
                    "decompression_bomb", self._url, f"body decodes to over {self._limit} bytes"
                )
            yield from self._through(index + 1, piece)


# --- errors ----------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes and contexts, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _classify(exc: Exception, url: str) -> FetchError | None:
    """The FetchError for an exception from httpx, httpcore or the guard; None for ones
    that are bugs rather than fetch outcomes."""
    chain = list(_chain(exc))
    for link in chain:
        if isinstance(link, BlockedAddress):
            return FetchError("blocked", url, str(link))
    if isinstance(exc, httpx.TimeoutException):
        return FetchError("timeout", url, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return FetchError("bad_url", url, str(exc))
    if isinstance(exc, httpx.ConnectError):
        # The TLS handshake is part of connecting; a TLS error later, mid-body, is a broken
        # connection like any other.
        if any(isinstance(link, ssl.SSLError) for link in chain):
            return FetchError("tls", url, str(exc))
        if any(isinstance(link, socket.gaierror) for link in chain):
            return FetchError("dns", url, str(exc))
        return FetchError("connect", url, str(exc))
    if isinstance(exc, httpx.NetworkError):  # reset or broken while reading or writing
        return FetchError("connect", url, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.HTTPError):  # RemoteProtocolError and the other protocol errors
        return FetchError("protocol", url, f"{type(exc).__name__}: {exc}")
    return None
