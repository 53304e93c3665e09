"""Per-host politeness shared by every worker: at most K requests in flight and R per
minute to one host, kept in Redis so ten workers on five machines count together.

One Lua script decides atomically:

* concurrency — a sorted set of permit tokens per host, scored by when each permit
  lapses (a worker that died holding one frees it after ``hold`` seconds);
* rate — GCRA (the generic cell rate algorithm): one "theoretical arrival time" per host;
  a request may go when it is no more than a small burst ahead of the steady rate.

A refused request gets the seconds to wait; the caller defers the feed rather than
blocking a worker on a busy host.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

HOST_PREFIX = "ingest:host:"

# KEYS: in-flight set, rate key. ARGV: now, token, max concurrent, per minute, hold seconds,
# burst. Returns {1, 0} when granted, {0, seconds to wait} when not.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local max_concurrent = tonumber(ARGV[3])
local interval = 60.0 / tonumber(ARGV[4])
-- GCRA tolerance: `burst` requests may go back to back, then one per interval.
local burst = (tonumber(ARGV[6]) - 1) * interval
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= max_concurrent then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tostring(math.min(1.0, tonumber(first[2]) - now))}
end
local tat = tonumber(redis.call('GET', KEYS[2]) or now)
if tat < now then
  tat = now
end
if tat - now > burst then
  return {0, tostring(tat - now - burst)}
end
local keep_ms = math.ceil((tat + interval - now + 60) * 1000)
redis.call('SET', KEYS[2], tostring(tat + interval), 'PX', keep_ms)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5])) + 60)
return {1, '0'}
"""


@dataclass(frozen=True, slots=True)
class HostLimits:
    max_concurrent: int = 2
    per_minute: int = 60
    hold: float = 120.0  # a permit lapses after this (its holder may have died)
    burst: int = 2  # requests that may go back to back before the steady rate applies


@dataclass(frozen=True, slots=True)
class Permit:
    host: str
    token: str
    granted: bool
    wait: float  # seconds to wait when not granted


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def acquire(client: redis.Redis, url: str, limits: HostLimits, *, now: float) -> Permit:
    host = host_of(url)
    token = uuid.uuid4().hex
    granted, wait = client.eval(
        _ACQUIRE, 2, f"{HOST_PREFIX}{host}:inflight", f"{HOST_PREFIX}{host}:rate",
        now, token, limits.max_concurrent, limits.per_minute, limits.hold, limits.burst,
    )  # fmt: skip
    return Permit(host, token, granted == 1, max(0.0, float(wait)))


def release(client: redis.Redis, permit: Permit) -> None:
    if permit.granted:
        client.zrem(f"{HOST_PREFIX}{permit.host}:inflight", permit.token)
