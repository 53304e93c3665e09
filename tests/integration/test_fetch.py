"""The fetcher against a real local HTTP server: validators, encodings, redirects, limits,
errors, and the network guard on real connections."""

from __future__ import annotations

import gzip
import ipaddress
import pickle
import resource
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import brotli
import pytest

from pipelines.fetch import Conditional, Fetcher, FetchError, FetchLimits, FetchResult, Hop
from pipelines.netguard import BlockedAddress, GuardedBackend, IPAddress, blocked_reason
from tests import feedserver
from tests.feedserver import FeedServer

# The fixture, so this module runs without conftest. (An import of the name itself trips
# ruff's F811 at every test that takes it as a parameter.)
feed_server = feedserver.feed_server

pytestmark = pytest.mark.integration

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
LOCAL = FetchLimits(
    connect_timeout=5, read_timeout=5, total_timeout=15, allow_private_networks=True
)


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(LOCAL) as fetcher:
        yield fetcher


def fetch_error(fetcher: Fetcher, url: str, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url, **kwargs)  # type: ignore[arg-type]
    return caught.value


# --- plain and conditional GETs ---------------------------------------------------------


def test_200_with_body_validators_and_request_headers(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    url = feed_server.route(
        "/feed.xml",
        body=FEED,
        etag='"v1"',
        last_modified="Tue, 01 Jul 2025 10:00:00 GMT",
        headers={"Content-Type": "application/rss+xml", "Cache-Control": "max-age=300"},
    )
    result = fetcher.fetch(url)
    assert isinstance(result, FetchResult)
    assert (result.status, result.body, result.url, result.final_url) == (200, FEED, url, url)
    assert result.etag == '"v1"'
    assert result.last_modified == "Tue, 01 Jul 2025 10:00:00 GMT"
    assert result.headers["content-type"] == "application/rss+xml"
    assert result.headers["cache-control"] == "max-age=300"
    assert result.redirects == () and result.permanent_redirect is None
    assert result.bytes_on_wire == len(FEED) and result.elapsed > 0

    (request,) = feed_server.requests
    assert request.headers["user-agent"] == "feed-ingest/0.1"
    assert request.headers["accept"].startswith("application/rss+xml, application/atom+xml")
    assert request.headers["accept-encoding"] == "gzip, deflate, br"
    assert "if-none-match" not in request.headers
    assert "if-modified-since" not in request.headers


def test_user_agent_comes_from_limits_and_caller_headers_override(
    feed_server: FeedServer,
) -> None:
    url = feed_server.route("/page", body=b"<html></html>")
    limits = FetchLimits(allow_private_networks=True, user_agent="feed-ingest/9 (+ops@x.test)")
    with Fetcher(limits) as fetcher:
        fetcher.fetch(url, headers={"Accept": "text/html", "X-Extra": "1"})
    (request,) = feed_server.requests
    assert request.headers["user-agent"] == "feed-ingest/9 (+ops@x.test)"
    assert request.headers["accept"] == "text/html"
    assert request.headers["x-extra"] == "1"


def test_conditional_get_answers_304_with_empty_body(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    modified = "Tue, 01 Jul 2025 10:00:00 GMT"
    url = feed_server.route("/feed", body=FEED, etag='"abc"', last_modified=modified)
    first = fetcher.fetch(url)
    second = fetcher.fetch(
        url, conditional=Conditional(etag=first.etag, last_modified=first.last_modified)
    )
    assert second.status == 304
    assert second.body == b"" and second.bytes_on_wire == 0
    assert second.etag == '"abc"'
    request = feed_server.requests[-1]
    assert request.headers["if-none-match"] == '"abc"'
    assert request.headers["if-modified-since"] == modified


def test_last_modified_alone_gives_304(feed_server: FeedServer, fetcher: Fetcher) -> None:
    modified = "Wed, 02 Jul 2025 08:30:00 GMT"
    url = feed_server.route("/feed", body=FEED, last_modified=modified)
    result = fetcher.fetch(url, conditional=Conditional(last_modified=modified))
    assert (result.status, result.body) == (304, b"")
    assert feed_server.requests[-1].headers["if-modified-since"] == modified
    assert "if-none-match" not in feed_server.requests[-1].headers


def test_changed_etag_gives_200_with_new_body(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.route("/feed", body=FEED, etag='"v1"')
    assert fetcher.fetch(url, conditional=Conditional(etag='"v1"')).status == 304
    feed_server.route("/feed", body=FEED + b"<!-- new -->", etag='"v2"')
    result = fetcher.fetch(url, conditional=Conditional(etag='"v1"'))
    assert result.status == 200
    assert result.body == FEED + b"<!-- new -->"
    assert result.etag == '"v2"'


# --- content encodings ------------------------------------------------------------------


def test_gzip_body_is_decoded(feed_server: FeedServer, fetcher: Fetcher) -> None:
    body = FEED * 500
    url = feed_server.route("/feed", body=body, gzip=True)
    result = fetcher.fetch(url)
    assert result.headers["content-encoding"] == "gzip"
    assert result.body == body
    assert result.bytes_on_wire < len(body) // 10  # it really travelled compressed


def test_brotli_body_is_decoded(feed_server: FeedServer, fetcher: Fetcher) -> None:
    body = FEED * 3000 + bytes(range(256)) * 50
    url = feed_server.route("/feed", body=brotli.compress(body), headers={"Content-Encoding": "br"})
    assert fetcher.fetch(url).body == body


@pytest.mark.parametrize(
    "compress",
    [zlib.compress, lambda data: zlib.compress(data)[2:-4]],  # zlib-wrapped and raw deflate
    ids=["zlib", "raw"],
)
def test_deflate_body_is_decoded(
    feed_server: FeedServer, fetcher: Fetcher, compress: Callable[[bytes], bytes]
) -> None:
    body = FEED * 200
    url = feed_server.route("/feed", body=compress(body), headers={"Content-Encoding": "deflate"})
    assert fetcher.fetch(url).body == body


def test_stacked_encodings_and_gzip_members(feed_server: FeedServer, fetcher: Fetcher) -> None:
    body = FEED * 100
    # "deflate, gzip": deflated first, then gzipped; undone in reverse.
    stacked = feed_server.route(
        "/stacked",
        body=gzip.compress(zlib.compress(body)),
        headers={"Content-Encoding": "deflate, gzip"},
    )
    assert fetcher.fetch(stacked).body == body
    members = feed_server.route(
        "/members",
        body=gzip.compress(body[:1000]) + gzip.compress(body[1000:]),
        headers={"Content-Encoding": "gzip"},
    )
    assert fetcher.fetch(members).body == body


def test_corrupt_and_unknown_encodings_are_protocol_errors(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    corrupt = feed_server.route(
        "/corrupt", body=b"\x1f\x8b\x08\x00garbage-garbage", headers={"Content-Encoding": "gzip"}
    )
    assert fetch_error(fetcher, corrupt).kind == "protocol"
    unknown = feed_server.route(
        "/zstd", body=b"\x28\xb5\x2f\xfd", headers={"Content-Encoding": "zstd"}
    )
    error = fetch_error(fetcher, unknown)
    assert error.kind == "protocol" and "zstd" in str(error)


# --- redirects --------------------------------------------------------------------------


def test_permanent_redirect_is_reported(feed_server: FeedServer, fetcher: Fetcher) -> None:
    final = feed_server.route("/new-feed", body=FEED)
    old = feed_server.redirect("/old-feed", "/new-feed", 301)  # relative Location
    result = fetcher.fetch(old)
    assert result.status == 200 and result.body == FEED
    assert result.url == old and result.final_url == final
    assert result.redirects == (Hop(old, 301, final),)
    assert result.permanent_redirect == final


def test_chain_of_301_and_308_is_permanent(feed_server: FeedServer, fetcher: Fetcher) -> None:
    final = feed_server.route("/c", body=FEED)
    feed_server.redirect("/b", final, 308)  # absolute Location
    a = feed_server.redirect("/a", "/b", 301)
    result = fetcher.fetch(a)
    assert [hop.status for hop in result.redirects] == [301, 308]
    assert result.permanent_redirect == final


@pytest.mark.parametrize("statuses", [(302,), (307,), (303,), (301, 302), (302, 301)])
def test_any_temporary_hop_means_no_permanent_redirect(
    feed_server: FeedServer, fetcher: Fetcher, statuses: tuple[int, ...]
) -> None:
    target = feed_server.route("/final", body=FEED)
    for index, status in reversed(list(enumerate(statuses))):
        target = feed_server.redirect(f"/hop{index}", target, status)
    result = fetcher.fetch(target)
    assert result.status == 200
    assert [hop.status for hop in result.redirects] == list(statuses)
    assert result.permanent_redirect is None


def test_redirect_loop_stops_at_the_limit(feed_server: FeedServer) -> None:
    a = feed_server.redirect("/a", "/b", 302)
    feed_server.redirect("/b", "/a", 302)
    with Fetcher(FetchLimits(allow_private_networks=True, max_redirects=3)) as fetcher:
        error = fetch_error(fetcher, a)
    assert error.kind == "too_many_redirects" and not error.transient
    assert error.url == a
    assert feed_server.hits("/a") + feed_server.hits("/b") == 4  # the first request + 3 hops


def test_redirect_to_another_scheme_is_refused(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.redirect("/ftp", "ftp://127.0.0.1/feed.xml", 301)
    assert fetch_error(fetcher, url).kind == "bad_url"


def test_redirect_status_without_location_is_returned(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    url = feed_server.route("/odd", status=302, body=b"moved somewhere")
    result = fetcher.fetch(url)
    assert (result.status, result.redirects, result.body) == (302, (), b"moved somewhere")


def test_credentials_do_not_follow_a_redirect_to_another_origin(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    with FeedServer() as other:
        target = other.route("/feed", body=FEED)
        url = feed_server.redirect("/private-feed", target, 302)
        headers = {"Authorization": "Bearer secret", "X-Keep": "yes"}
        assert fetcher.fetch(url, headers=headers).body == FEED
        assert feed_server.requests[0].headers["authorization"] == "Bearer secret"
        (request,) = other.requests
        assert "authorization" not in request.headers
        assert request.headers["x-keep"] == "yes"


# --- statuses are results, not errors ----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (410, {}),
        (404, {}),
        (429, {"Retry-After": "120"}),
        (503, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}),
        (500, {}),
    ],
)
def test_error_statuses_are_returned_with_headers(
    feed_server: FeedServer, fetcher: Fetcher, status: int, headers: dict[str, str]
) -> None:
    url = feed_server.route("/feed", status=status, body=b"nope", headers=headers)
    result = fetcher.fetch(url)
    assert result.status == status
    assert result.body == b"nope"
    for name, value in headers.items():
        assert result.headers[name.lower()] == value


# --- time limits ------------------------------------------------------------------------


def test_server_slower_than_read_timeout(feed_server: FeedServer) -> None:
    url = feed_server.route("/slow", body=FEED, delay=2.0)
    limits = FetchLimits(allow_private_networks=True, read_timeout=0.3, total_timeout=10)
    with Fetcher(limits) as fetcher:
        error = fetch_error(fetcher, url)
    assert error.kind == "timeout" and error.transient


@pytest.mark.parametrize("chunked", [False, True])
def test_dripping_server_fails_by_total_timeout(feed_server: FeedServer, chunked: bool) -> None:
    # Each byte comes well within the read timeout; only the total deadline can stop it.
    url = feed_server.route("/drip", body=b"x" * 400, drip=0.02, chunked=chunked)
    limits = FetchLimits(allow_private_networks=True, read_timeout=5, total_timeout=0.6)
    with Fetcher(limits) as fetcher:
        error = fetch_error(fetcher, url)
    assert error.kind == "timeout"
    assert "body not complete" in error.message


# --- size limits ------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_is_refused(feed_server: FeedServer, chunked: bool) -> None:
    url = feed_server.route("/big", body=b"a" * (3 * 1024 * 1024), chunked=chunked)
    with Fetcher(FetchLimits(allow_private_networks=True, max_bytes=1024 * 1024)) as fetcher:
        error = fetch_error(fetcher, url)
    assert error.kind == "too_large" and not error.transient
    assert ("Content-Length" in error.message) is not chunked


def test_body_at_the_limit_is_accepted(feed_server: FeedServer) -> None:
    body = b"b" * 4096
    url = feed_server.route("/exact", body=body, chunked=True)
    with Fetcher(FetchLimits(allow_private_networks=True, max_bytes=4096)) as fetcher:
        assert fetcher.fetch(url).body == body


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """200 MiB of zeros, gzipped to about 200 KB, made without holding the 200 MiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    parts = [compressor.compress(zeros) for _ in range(200)]
    parts.append(compressor.flush())
    return b"".join(parts)


@pytest.fixture(scope="module")
def brotli_bomb() -> bytes:
    compressor = brotli.Compressor(quality=5)
    zeros = bytes(1024 * 1024)
    parts = [compressor.process(zeros) for _ in range(200)]
    parts.append(compressor.finish())
    return b"".join(parts)


@pytest.mark.parametrize(("encoding", "bomb_name"), [("gzip", "gzip_bomb"), ("br", "brotli_bomb")])
def test_decompression_bomb_is_stopped_without_ballooning(
    feed_server: FeedServer, request: pytest.FixtureRequest, encoding: str, bomb_name: str
) -> None:
    bomb: bytes = request.getfixturevalue(bomb_name)
    assert len(bomb) < 300_000
    url = feed_server.route("/bomb", body=bomb, headers={"Content-Encoding": encoding})
    limits = FetchLimits(allow_private_networks=True, max_decompressed_bytes=10 * 1024 * 1024)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    try:
        with Fetcher(limits) as fetcher:
            error = fetch_error(fetcher, url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert error.kind == "decompression_bomb" and not error.transient
    # The cap is 10 MiB and the bomb 200 MiB: the decoded pieces kept, plus one step.
    assert peak < 40 * 1024 * 1024, peak
    assert rss_growth < 100 * 1024, rss_growth


def test_decoded_body_under_the_cap_is_fine(feed_server: FeedServer) -> None:
    body = bytes(5 * 1024 * 1024)
    url = feed_server.route("/zeros", body=body, gzip=True)
    limits = FetchLimits(allow_private_networks=True, max_decompressed_bytes=len(body))
    with Fetcher(limits) as fetcher:
        assert fetcher.fetch(url).body == body


# --- the network guard on real connections ----------------------------------------------


def test_private_server_is_refused_before_any_request(feed_server: FeedServer) -> None:
    url = feed_server.route("/feed", body=FEED)
    with Fetcher(FetchLimits()) as fetcher:  # allow_private_networks=False
        error = fetch_error(fetcher, url)
    assert error.kind == "blocked" and not error.transient
    assert "loopback" in error.message
    assert feed_server.requests == []


def test_localhost_by_name_is_refused(feed_server: FeedServer) -> None:
    feed_server.route("/feed", body=FEED)
    with Fetcher(FetchLimits()) as fetcher:
        error = fetch_error(fetcher, f"http://localhost:{feed_server.port}/feed")
    assert error.kind == "blocked"
    assert feed_server.requests == []


class OnlyThisLoopback(GuardedBackend):
    """The guard as in production, except that one loopback address counts as public: the
    stand-in for "the internet" in these tests."""

    def __init__(self, allowed: str, resolved: dict[str, list[str]] | None = None) -> None:
        super().__init__(allow_private_networks=False)
        self.allowed = ipaddress.ip_address(allowed)
        self.resolved = resolved or {}

    def check(self, ip: IPAddress) -> str | None:
        return None if ip == self.allowed else blocked_reason(ip)

    def resolve(self, host: str, port: int, timeout: float | None = None) -> list[str]:
        if host in self.resolved:
            return self.resolved[host]
        return super().resolve(host, port, timeout)


def test_redirect_to_a_private_address_is_refused(feed_server: FeedServer) -> None:
    with FeedServer(host="127.0.0.2") as internal:
        secret = internal.route("/admin", body=b"secret")
        url = feed_server.redirect("/feed", secret, 302)
        with Fetcher(FetchLimits(), backend=OnlyThisLoopback("127.0.0.1")) as fetcher:
            assert fetcher.fetch(feed_server.route("/ok", body=FEED)).status == 200
            error = fetch_error(fetcher, url)
        assert error.kind == "blocked"
        assert "127.0.0.2" in error.message
        assert feed_server.hits("/feed") == 1
        assert internal.requests == []


def test_guard_checks_resolved_addresses_and_connects_to_a_checked_one(
    feed_server: FeedServer,
) -> None:
    """A name that resolves to a blocked address is refused; one that resolves to a blocked
    and an allowed address is connected to the allowed one, by address: "feeds.example"
    resolves nowhere else, so a second lookup would fail as dns, not reach the server."""
    feed_server.route("/feed", body=FEED)
    port = feed_server.port
    backend = OnlyThisLoopback(
        "127.0.0.1",
        resolved={"rebound.example": ["127.0.0.2"], "feeds.example": ["10.0.0.1", "127.0.0.1"]},
    )
    with pytest.raises(BlockedAddress) as caught:
        backend.connect_tcp("rebound.example", port, timeout=2)
    assert (caught.value.address, caught.value.reason) == ("127.0.0.2", "loopback")

    with Fetcher(FetchLimits(), backend=backend) as fetcher:
        assert fetch_error(fetcher, f"http://rebound.example:{port}/feed").kind == "blocked"
        result = fetcher.fetch(f"http://feeds.example:{port}/feed")
    assert result.body == FEED
    assert feed_server.requests[-1].headers["host"] == f"feeds.example:{port}"


def test_guard_lets_private_addresses_through_when_allowed(feed_server: FeedServer) -> None:
    stream = GuardedBackend(allow_private_networks=True).connect_tcp(
        "localhost", feed_server.port, timeout=2
    )
    try:
        stream.write(b"GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert stream.read(1024, timeout=5).startswith(b"HTTP/1.1 404")
    finally:
        stream.close()


# --- connection errors ------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_closed_port_is_a_connect_error(fetcher: Fetcher) -> None:
    error = fetch_error(fetcher, f"http://127.0.0.1:{closed_port()}/feed")
    assert error.kind == "connect" and error.transient


@pytest.mark.parametrize(
    "url", ["ftp://example.com/feed.xml", "file:///etc/passwd", "not a url", "http:///feed", ""]
)
def test_bad_urls(fetcher: Fetcher, url: str) -> None:
    error = fetch_error(fetcher, url)
    assert error.kind == "bad_url" and not error.transient


def test_unresolvable_host_is_a_dns_error(fetcher: Fetcher) -> None:
    error = fetch_error(fetcher, "http://nonexistent.invalid/feed.xml")
    assert error.kind == "dns" and error.transient


def test_server_closing_mid_body_is_a_protocol_error(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    # Content-Length promises more than is sent, then the connection closes.
    url = feed_server.route(
        "/short", body=b"partial", headers={"Content-Length": "100", "Connection": "close"}
    )
    assert fetch_error(fetcher, url).kind == "protocol"


def test_fetch_error_pickles() -> None:
    error = FetchError("too_large", "http://x.test/feed", "body over 10 bytes")
    again = pickle.loads(pickle.dumps(error))
    assert (again.kind, again.url, again.message, again.transient) == (
        "too_large",
        "http://x.test/feed",
        "body over 10 bytes",
        False,
    )
    assert str(again) == str(error)


# --- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return key, cert


def test_tls_uses_the_host_name_and_an_untrusted_certificate_fails(
    self_signed: tuple[Path, Path], fetcher: Fetcher
) -> None:
    """The guard connects to the resolved address, yet TLS must still name the host (SNI
    and certificate check); a self-signed certificate is a tls error, not a retry."""
    key, cert = self_signed
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []

    def record_sni(_sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = record_sni  # type: ignore[assignment]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one() -> None:
        conn, _ = listener.accept()
        conn.settimeout(5)
        try:
            context.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()  # the client refused our certificate, as it should

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        error = fetch_error(fetcher, f"https://localhost:{port}/feed")
    finally:
        thread.join(timeout=5)
        listener.close()
    assert error.kind == "tls" and not error.transient
    assert names == ["localhost"]


# --- sharing one fetcher ----------------------------------------------------------------


def test_keep_alive_reuses_the_connection(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.route("/feed", body=FEED)
    for _ in range(3):
        assert fetcher.fetch(url).status == 200
    assert len({request.client for request in feed_server.requests}) == 1


def test_one_fetcher_serves_many_threads(feed_server: FeedServer, fetcher: Fetcher) -> None:
    urls = [
        feed_server.route(f"/feed{i}", body=FEED + str(i).encode(), gzip=True) for i in range(8)
    ]
    results: dict[int, list[bytes]] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            results[index] = [fetcher.fetch(urls[index]).body for _ in range(10)]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert results == {i: [FEED + str(i).encode()] * 10 for i in range(8)}
    assert len(feed_server.requests) == 80


def test_304_declaring_a_large_representation_is_not_too_large(
    feed_server: FeedServer,
) -> None:
    url = feed_server.route(
        "/feed", body=FEED, etag='"big"', headers={"Content-Length": str(64 * 1024 * 1024)}
    )
    with Fetcher(FetchLimits(allow_private_networks=True, max_bytes=1024)) as fetcher:
        result = fetcher.fetch(url, conditional=Conditional(etag='"big"'))
    assert (result.status, result.body) == (304, b"")


class SlowResolver(GuardedBackend):
    """A resolver that never answers in time (a DNS server that drops queries)."""

    def __init__(self) -> None:
        super().__init__(allow_private_networks=True)

    def lookup(self, host: str, port: int) -> list[object]:
        time.sleep(5)
        return []


def test_a_hanging_dns_lookup_is_bounded_by_the_connect_timeout() -> None:
    # Unbounded, the lookup would answer (with nothing) after 5 s: "blocked", not "timeout".
    limits = FetchLimits(connect_timeout=0.5, total_timeout=2)
    with Fetcher(limits, backend=SlowResolver()) as fetcher:
        error = fetch_error(fetcher, "http://slow-dns.example/feed")
    assert error.kind == "timeout" and error.transient
