"""Per-process resources of a worker: the Redis client and the HTTP fetcher (created
lazily, after the prefork pool has forked), and the article-page fetch used by teaser
entries."""

from __future__ import annotations

import threading

import redis
import structlog

from config.settings import Settings, get_settings
from pipelines.documents import DocumentError, decode_bytes
from pipelines.fetch import Fetcher, FetchError, FetchLimits
from pipelines.politeness import HostLimits, release
from pipelines.poll import acquire_waiting
from worker.app import app

log = structlog.get_logger("worker.resources")
settings = get_settings()

_client: redis.Redis | None = None
_fetcher: Fetcher | None = None
_fetcher_lock = threading.Lock()


def user_agent(settings: Settings) -> str:
    contact = f"; +{settings.contact_url}" if settings.contact_url else ""
    return f"feed-ingest/0.1 (feed fetcher{contact})"


def fetch_limits(settings: Settings) -> FetchLimits:
    return FetchLimits(
        connect_timeout=settings.fetch_connect_timeout,
        read_timeout=settings.fetch_read_timeout,
        total_timeout=settings.fetch_total_timeout,
        max_bytes=settings.fetch_max_bytes,
        max_decompressed_bytes=settings.fetch_max_decompressed_bytes,
        max_redirects=settings.fetch_max_redirects,
        allow_private_networks=settings.allow_private_networks,
        user_agent=user_agent(settings),
    )


def fetcher() -> Fetcher:
    """This process's fetcher (one connection pool, shared by the poll threads)."""
    global _fetcher
    with _fetcher_lock:
        if _fetcher is None:
            _fetcher = Fetcher(fetch_limits(settings))
        return _fetcher


def host_limits(settings: Settings) -> HostLimits:
    return HostLimits(
        max_concurrent=settings.host_max_concurrency, per_minute=settings.host_max_per_minute
    )


def redis_client() -> redis.Redis:
    """This process's Redis client (redis-py pools are thread-safe and fork-aware)."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            app.conf.broker_url, socket_timeout=30, health_check_interval=30
        )
    return _client


def fetch_page(url: str) -> tuple[str, str] | None:
    """An article page for a teaser entry: the same fetcher, guards and host limits as
    feeds. Returns (final URL, HTML) or None when it cannot be had (logged)."""
    client = redis_client()
    permit = acquire_waiting(client, url, host_limits(settings), patience=5.0)
    if not permit.granted:
        log.warning("page.host_busy", url=url, wait=permit.wait)
        return None
    try:
        result = fetcher().fetch(url, headers={"Accept": "text/html,*/*;q=0.5"})
    except FetchError as exc:
        log.warning("page.fetch_failed", url=url, kind=exc.kind, error=str(exc))
        return None
    finally:
        release(client, permit)
    if result.status != 200 or not result.body:
        log.warning("page.fetch_failed", url=url, status=result.status)
        return None
    try:
        return result.final_url, decode_bytes(result.body, "html")
    except DocumentError as exc:
        log.warning("page.undecodable", url=url, error=exc.reason)
        return None
