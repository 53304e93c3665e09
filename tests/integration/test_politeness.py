"""Per-host politeness in a real Redis: concurrency and rate shared by all workers."""

from __future__ import annotations

import pytest
import redis

from pipelines.politeness import HostLimits, acquire, release

pytestmark = pytest.mark.integration

URL = "https://news.example/feed.xml"


def test_at_most_k_requests_in_flight_per_host(redis_client: redis.Redis) -> None:
    now = 1_000_000.0
    limits = HostLimits(max_concurrent=2, per_minute=600_000, hold=30, burst=10)
    first = acquire(redis_client, URL, limits, now=now)
    second = acquire(redis_client, "https://NEWS.example/other", limits, now=now)
    third = acquire(redis_client, URL, limits, now=now)
    assert first.granted and second.granted and not third.granted
    assert 0 < third.wait <= 1.0
    # Another host is not held back.
    assert acquire(redis_client, "https://other.example/", limits, now=now).granted
    release(redis_client, first)
    assert acquire(redis_client, URL, limits, now=now).granted


def test_at_most_r_requests_per_minute_per_host(redis_client: redis.Redis) -> None:
    limits = HostLimits(max_concurrent=100, per_minute=60, hold=30, burst=2)
    now = 2_000_000.0
    granted = [acquire(redis_client, URL, limits, now=now) for _ in range(4)]
    assert [p.granted for p in granted] == [True, True, False, False]  # a burst of 2
    refused = granted[2]
    assert refused.wait == pytest.approx(1.0)
    # One second later, one more slot.
    later = [acquire(redis_client, URL, limits, now=now + 1.0) for _ in range(2)]
    assert [p.granted for p in later] == [True, False]
    # Over a minute, the rate holds: about 60 grants.
    grants = sum(
        acquire(redis_client, URL, limits, now=now + 2 + t / 10).granted for t in range(600)
    )
    assert 58 <= grants <= 62


def test_a_dead_holders_permit_lapses(redis_client: redis.Redis) -> None:
    now = 3_000_000.0
    limits = HostLimits(max_concurrent=1, per_minute=6000, hold=30, burst=2)
    assert acquire(redis_client, URL, limits, now=now).granted  # never released
    assert not acquire(redis_client, URL, limits, now=now + 10).granted
    assert acquire(redis_client, URL, limits, now=now + 31).granted
