"""Feeds and their state in Redis, and the one due-set that schedules them all.

* ``ingest:feed:<id>`` — a hash: the feed's settings and its polling state (validators,
  last status and error, counters, the entry times its interval adapts to).
* ``ingest:feeds:due`` — a sorted set of feed id → next poll time (epoch seconds). One
  set for all feeds: the scheduler's tick claims what is due, not one beat entry per feed.
* ``ingest:feeds:leases`` — a sorted set of claimed feed id → lease expiry. Claiming a
  feed moves its due time to the end of the lease, so a feed whose worker died is due
  again when the lease runs out; finishing a poll (with the claim's token) sets the real
  next time. The number of live leases is the in-flight count the tick keeps under a cap.
* ``ingest:feeds:url:<hash>`` — URL → id, for every URL a feed has had (a permanently
  redirected feed is still found by its old address).

The feed's id is derived from the URL it was added with and never changes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import redis
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

FEED_PREFIX = "ingest:feed:"
FEED_IDS = "ingest:feeds:ids"
DUE = "ingest:feeds:due"
LEASES = "ingest:feeds:leases"
URL_PREFIX = "ingest:feeds:url:"

FeedStatus = Literal["new", "ok", "backoff", "failing", "challenge", "disabled"]
FeedSource = Literal["yaml", "cli"]


def feed_id_for(url: str) -> str:
    return hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:16]


def _url_key(url: str) -> str:
    return URL_PREFIX + hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """A feed as configured (``config/feeds.yaml`` or ``ingest feeds add``)."""

    url: str
    name: str | None = None
    enabled: bool = True
    min_interval: int | None = None  # None: the poll_min_interval setting
    max_interval: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    user_agent: str | None = None
    reason: str | None = None  # why we follow it


@dataclass(frozen=True, slots=True)
class FeedState:
    id: str
    url: str
    name: str | None = None
    reason: str | None = None
    enabled: bool = True
    source: FeedSource = "cli"
    min_interval: int | None = None
    max_interval: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    user_agent: str | None = None
    added_at: str | None = None
    # polling state
    status: FeedStatus = "new"
    status_reason: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_poll_at: str | None = None
    last_full_fetch_at: str | None = None
    last_http_status: int | None = None
    last_error: str | None = None
    consecutive_errors: int = 0
    entries_seen: int = 0
    last_new_entries: int = 0
    polls: int = 0
    deferrals: int = 0  # polls put off because the host was busy
    key_mode: str = "guid"
    key_mode_reason: str | None = None
    redirect_to: str | None = None
    redirect_count: int = 0
    entry_times: list[str] = field(default_factory=list)  # ISO times of recent entries
    ttl_minutes: int | None = None  # what the feed last said (RSS ttl, skipHours/Days)
    skip_hours: list[int] = field(default_factory=list)
    skip_days: list[str] = field(default_factory=list)


_JSON_FIELDS = {"headers", "entry_times", "skip_hours", "skip_days"}
_INT_FIELDS = {f.name for f in fields(FeedState) if f.type in ("int", "int | None")}
_BOOL_FIELDS = {"enabled"}


def _encode(state: FeedState | Mapping[str, Any]) -> dict[str, str]:
    data = asdict(state) if isinstance(state, FeedState) else dict(state)
    out: dict[str, str] = {}
    for name, value in data.items():
        if name in _JSON_FIELDS:
            out[name] = json.dumps(value)
        elif name in _BOOL_FIELDS:
            out[name] = "1" if value else "0"
        else:
            out[name] = "" if value is None else str(value)
    return out


def _decode(raw: Mapping[bytes, bytes]) -> FeedState:
    known = {f.name for f in fields(FeedState)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name, text = key.decode(), value.decode()
        if name not in known:
            continue  # lease_token and the like
        if name in _JSON_FIELDS:
            values[name] = json.loads(text) if text else None
        elif name in _BOOL_FIELDS:
            values[name] = text == "1"
        elif name in _INT_FIELDS:
            values[name] = int(text) if text else None
        else:
            values[name] = text or None
    for name in (
        "consecutive_errors",
        "entries_seen",
        "last_new_entries",
        "polls",
        "deferrals",
        "redirect_count",
    ):
        values[name] = values.get(name) or 0
    values["headers"] = values.get("headers") or {}
    for name in ("entry_times", "skip_hours", "skip_days"):
        values[name] = values.get(name) or []
    values["key_mode"] = values.get("key_mode") or "guid"
    return FeedState(**values)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FeedListError(ValueError):
    """The feed list cannot be read; the message names the file and the entry."""


class _FeedEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://\S+$")
    name: str | None = None
    reason: str | None = None
    enabled: bool = True
    min_interval: int | None = Field(None, gt=0)
    max_interval: int | None = Field(None, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)
    user_agent: str | None = None


def read_feed_list(path: Path) -> list[FeedSpec]:
    """The feeds of ``config/feeds.yaml`` (or the file the feeds_file setting names)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FeedListError(f"{path}: {exc}") from exc
    items = data.get("feeds") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise FeedListError(f"{path}: expected a mapping with a 'feeds' list")
    specs = []
    for index, item in enumerate(items):
        try:
            entry = _FeedEntry.model_validate(item)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise FeedListError(f"{path}: feed #{index + 1}: {problems}") from exc
        specs.append(
            FeedSpec(
                entry.url,
                entry.name,
                entry.enabled,
                entry.min_interval,
                entry.max_interval,
                entry.headers,
                entry.user_agent,
                entry.reason,
            )
        )
    return specs


# --- the registry ------------------------------------------------------------------------


def get_feed(client: redis.Redis, feed_id: str) -> FeedState | None:
    raw = client.hgetall(FEED_PREFIX + feed_id)
    return _decode(raw) if raw else None


def claimed_feed(client: redis.Redis, claim: Claim) -> FeedState | None:
    """The feed, if ``claim`` still holds its lease (a task redelivered after its lease
    ran out and the feed was claimed again must not poll it a second time)."""
    raw = client.hgetall(FEED_PREFIX + claim.feed_id)
    token = raw.get(b"lease_token")
    if token is None or token.decode() != claim.token:
        return None
    return _decode(raw)


def find_feed(client: redis.Redis, url: str) -> FeedState | None:
    feed_id = client.get(_url_key(url))
    return get_feed(client, feed_id.decode()) if feed_id else None


def list_feeds(client: redis.Redis) -> list[FeedState]:
    ids = sorted(i.decode() for i in client.smembers(FEED_IDS))
    pipe = client.pipeline(transaction=False)
    for feed_id in ids:
        pipe.hgetall(FEED_PREFIX + feed_id)
    return sorted((_decode(raw) for raw in pipe.execute() if raw), key=lambda f: f.url)


def _create(client: redis.Redis, state: FeedState, now: datetime) -> None:
    pipe = client.pipeline()
    pipe.hset(FEED_PREFIX + state.id, mapping=_encode(state))
    pipe.sadd(FEED_IDS, state.id)
    pipe.set(_url_key(state.url), state.id)
    if state.enabled:
        pipe.zadd(DUE, {state.id: now.timestamp()})
    pipe.execute()


def add_feed(
    client: redis.Redis,
    url: str,
    *,
    now: datetime,
    name: str | None = None,
    min_interval: int | None = None,
    max_interval: int | None = None,
    headers: Mapping[str, str] | None = None,
    user_agent: str | None = None,
) -> tuple[FeedState, bool]:
    """``ingest feeds add``: a new feed, or for an existing one the options given (others
    stay). Either way the feed is enabled — a disabled one (a 410, ``enabled: false``)
    gets a fresh start — and due at once. Returns the feed and whether it is new."""
    existing = find_feed(client, url)
    given = {
        "name": name,
        "min_interval": min_interval,
        "max_interval": max_interval,
        "headers": dict(headers) if headers else None,
        "user_agent": user_agent,
    }
    given = {key: value for key, value in given.items() if value is not None}
    if existing is None:
        state = FeedState(
            id=feed_id_for(url), url=url.strip(), added_at=iso(now), source="cli", **given
        )
        _create(client, state, now)
        return state, True
    changes: dict[str, Any] = {**given, "enabled": True}
    if existing.status == "disabled":
        changes.update(status="new", status_reason=None, consecutive_errors=0)
    pipe = client.pipeline()
    pipe.hset(FEED_PREFIX + existing.id, mapping=_encode(changes))
    pipe.zadd(DUE, {existing.id: now.timestamp()})
    pipe.execute()
    return replace(existing, **changes), False


def _apply_spec(client: redis.Redis, spec: FeedSpec, now: datetime) -> tuple[FeedState, bool]:
    """A feed from the feed list: the list is the truth for its options (a YAML feed that
    is also added by hand becomes the list's). Its state and due time stay; a feed the
    list disables leaves the due-set; one a publisher disabled (410) stays disabled."""
    options = {
        "name": spec.name,
        "reason": spec.reason,
        "enabled": spec.enabled,
        "min_interval": spec.min_interval,
        "max_interval": spec.max_interval,
        "headers": dict(spec.headers),
        "user_agent": spec.user_agent,
        "source": "yaml",
    }
    existing = find_feed(client, spec.url)
    if existing is None:
        state = FeedState(
            id=feed_id_for(spec.url), url=spec.url.strip(), added_at=iso(now), **options
        )
        _create(client, state, now)
        return state, True
    state = replace(existing, **options)
    pipe = client.pipeline()
    pipe.hset(FEED_PREFIX + state.id, mapping=_encode(options))
    if not state.enabled or state.status == "disabled":
        pipe.zrem(DUE, state.id)
    elif client.zscore(LEASES, state.id) is None:
        pipe.zadd(DUE, {state.id: now.timestamp()}, nx=True)  # keep an existing time
    pipe.execute()
    return state, False


def remove_feed(client: redis.Redis, state: FeedState) -> None:
    """Remove a feed, its schedule and every URL that named it (and only those)."""
    pipe = client.pipeline()
    pipe.delete(FEED_PREFIX + state.id)
    pipe.srem(FEED_IDS, state.id)
    pipe.zrem(DUE, state.id)
    pipe.zrem(LEASES, state.id)
    pipe.execute()
    for key in client.scan_iter(match=URL_PREFIX + "*", count=1000):
        if client.get(key) == state.id.encode():
            client.delete(key)


def sync_feeds(
    client: redis.Redis, specs: Sequence[FeedSpec], *, now: datetime
) -> tuple[int, int, int]:
    """Load the feed list: add or update each spec; remove the feeds that came from the
    list before and are no longer in it (feeds added by hand stay). Returns (added,
    updated, removed)."""
    added = updated = removed = 0
    wanted = set()
    for spec in specs:
        state, new = _apply_spec(client, spec, now)
        wanted.add(state.id)
        added, updated = added + new, updated + (not new)
    for state in list_feeds(client):
        if state.source == "yaml" and state.id not in wanted:
            remove_feed(client, state)
            removed += 1
    return added, updated, removed


def set_url(client: redis.Redis, state: FeedState, new_url: str) -> bool:
    """A permanent redirect confirmed: the feed lives at ``new_url`` now; its old URL
    still finds it. Refused (False) when another feed already has that address: two
    feeds must not share one URL; the caller keeps the feed where it is and says so."""
    owner = client.get(_url_key(new_url))
    if owner is not None and owner.decode() != state.id:
        return False
    pipe = client.pipeline()
    pipe.hset(
        FEED_PREFIX + state.id, mapping={"url": new_url, "redirect_to": "", "redirect_count": "0"}
    )
    pipe.set(_url_key(new_url), state.id)
    pipe.execute()
    return True


# --- the due-set and leases ---------------------------------------------------------------

# KEYS: due, leases. ARGV: now, lease seconds, max in flight, limit, token, feed prefix.
# Expired leases are dropped (their feeds are already due again: a claim moves the due
# time to the lease's end). Returns the claimed ids.
_CLAIM = """
local now = tonumber(ARGV[1])
local until_ = now + tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local room = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[2]))
if room <= 0 then
  return {}
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, room)
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], until_, id)
  redis.call('ZADD', KEYS[2], until_, id)
  redis.call('HSET', ARGV[6] .. id, 'lease_token', ARGV[5])
end
return ids
"""

# KEYS: due, leases, the feed's hash. ARGV: token, next poll epoch ('' = none), feed id,
# then field, value… Applies the poll's state only while the claim's lease is still this
# poll's: a poll that outlived its lease and was claimed again must not overwrite the
# newer one. A feed disabled meanwhile (or by this poll) leaves the due-set.
_COMPLETE = """
if redis.call('HGET', KEYS[3], 'lease_token') ~= ARGV[1] then
  return 0
end
if #ARGV > 3 then
  redis.call('HSET', KEYS[3], unpack(ARGV, 4))
end
redis.call('HDEL', KEYS[3], 'lease_token')
redis.call('ZREM', KEYS[2], ARGV[3])
local enabled = redis.call('HGET', KEYS[3], 'enabled')
if ARGV[2] == '' or enabled == '0' or redis.call('HGET', KEYS[3], 'status') == 'disabled' then
  redis.call('ZREM', KEYS[1], ARGV[3])
else
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Claim:
    feed_id: str
    token: str


def claim_due(
    client: redis.Redis, now: datetime, *, lease: int, max_in_flight: int, limit: int
) -> list[Claim]:
    """Claim up to ``limit`` due feeds, keeping at most ``max_in_flight`` leased."""
    token = uuid.uuid4().hex
    ids = client.eval(
        _CLAIM, 2, DUE, LEASES, now.timestamp(), lease, max_in_flight, limit, token, FEED_PREFIX
    )
    return [Claim(i.decode() if isinstance(i, bytes) else i, token) for i in ids]


def claim_feed(client: redis.Redis, feed_id: str, now: datetime, *, lease: int) -> Claim:
    """Claim one feed now, whatever its due time (``ingest feeds poll``)."""
    token = uuid.uuid4().hex
    until = now.timestamp() + lease
    pipe = client.pipeline()
    pipe.zadd(DUE, {feed_id: until})
    pipe.zadd(LEASES, {feed_id: until})
    pipe.hset(FEED_PREFIX + feed_id, "lease_token", token)
    pipe.execute()
    return Claim(feed_id, token)


def complete_poll(
    client: redis.Redis, claim: Claim, updates: Mapping[str, Any], next_at: datetime | None
) -> bool:
    """Store a poll's results and the feed's next poll time (None: not scheduled, for a
    disabled feed). False when the lease was lost to a newer claim (nothing written)."""
    args: list[str] = [
        claim.token,
        "" if next_at is None else repr(next_at.timestamp()),
        claim.feed_id,
    ]
    for name, value in _encode(updates).items():
        args += [name, value]
    done = client.eval(_COMPLETE, 3, DUE, LEASES, FEED_PREFIX + claim.feed_id, *args)
    return bool(done)


HEALTH = "ingest:polls:recent"
HEALTH_WINDOW = 100


def record_poll_health(client: redis.Redis, reached: Sequence[bool]) -> None:
    """Remember whether recent polls reached their host at all (for outage detection)."""
    if not reached:
        return
    pipe = client.pipeline(transaction=False)
    pipe.lpush(HEALTH, *("1" if ok else "0" for ok in reached))
    pipe.ltrim(HEALTH, 0, HEALTH_WINDOW - 1)
    pipe.execute()


def network_outage(client: redis.Redis, *, min_polls: int, failure_ratio: float) -> bool:
    """Most recent polls failed to reach their hosts: likely our own network is down, so
    those failures are not the feeds' fault."""
    recent = client.lrange(HEALTH, 0, HEALTH_WINDOW - 1)
    if len(recent) < min_polls:
        return False
    failed = sum(1 for value in recent if value == b"0")
    return failed / len(recent) >= failure_ratio
