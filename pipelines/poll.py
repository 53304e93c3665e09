"""One poll of one feed: politeness permit → conditional fetch → classify → parse →
new entries → next poll time.

The result says what to store and which entries to hand to the pipeline; the caller
(the poll task) enqueues the documents first, then marks the entries seen and completes
the lease, so a crash in between repeats work rather than losing it.

Outcomes and what they do to the feed:

| what happened                         | outcome          | status    | counted as error |
| ------------------------------------- | ---------------- | --------- | ---------------- |
| 200 with a new body                   | updated          | ok        | no               |
| 304, or 200 with an unchanged body    | not_modified     | ok        | no               |
| 429 / 503                             | rate_limited     | backoff   | yes              |
| other 5xx, timeout, DNS, refused      | transient_error  | backoff   | yes*             |
| 403 with ``cf-mitigated: challenge``  | challenge        | challenge | yes              |
| 404 and other 4xx, unparseable feed,  | permanent_error  | failing   | yes              |
| refused address, oversized body       |                  |           |                  |
| 410                                   | (disabled)       | disabled  | —                |

\\* not while most polls fail at once (our own network is down).
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import redis

from pipelines.documents import RawDocument
from pipelines.entries import entry_document
from pipelines.feeds import (
    FeedParseError,
    ParsedFeed,
    content_fingerprint,
    entry_keys,
    keys_in_mode,
    parse_feed,
)
from pipelines.feedstore import Claim, FeedState, FeedStatus, complete_poll, iso, set_url
from pipelines.fetch import Conditional, Fetcher, FetchError, FetchResult
from pipelines.politeness import HostLimits, Permit, acquire, release
from pipelines.schedule import Bounds, Hints, NextPoll, Outcome, next_poll
from pipelines.seen import EntryCheck, check_entries, mark_entries, renew_entries

ENTRY_TIMES_KEPT = 50

PollOutcome = Outcome | Literal["deferred", "gone"]


@dataclass(frozen=True, slots=True)
class PollOptions:
    bounds: Bounds
    host_limits: HostLimits
    unconditional_every: float
    redirect_confirmations: int
    max_changes: int
    teaser_max_words: int


@dataclass(frozen=True, slots=True)
class PollResult:
    feed: FeedState
    outcome: PollOutcome
    next_poll: NextPoll | None  # None: not polled again (disabled)
    updates: dict[str, Any] = field(default_factory=dict)
    documents: list[RawDocument] = field(default_factory=list)
    checks: list[EntryCheck] = field(default_factory=list)
    http_status: int | None = None
    error: str | None = None
    reached_host: bool | None = None  # None: not tried (deferred)
    new_url: str | None = None  # a confirmed permanent redirect

    @property
    def summary(self) -> dict[str, Any]:
        return {
            "feed_id": self.feed.id,
            "url": self.feed.url,
            "outcome": self.outcome,
            "http_status": self.http_status,
            "new_entries": len(self.documents),
            "next_poll": iso(self.next_poll.at) if self.next_poll else None,
            "next_reason": self.next_poll.reason if self.next_poll else None,
            "error": self.error,
        }


def feed_bounds(feed: FeedState, bounds: Bounds) -> Bounds:
    """The global bounds, narrowed by the feed's own (from feeds.yaml)."""
    low = feed.min_interval or bounds.min_interval
    high = feed.max_interval or bounds.max_interval
    return Bounds(
        min_interval=min(low, high),
        max_interval=max(low, high),
        default_interval=min(max(bounds.default_interval, low), high),
        jitter=bounds.jitter,
        max_jitter=bounds.max_jitter,
    )


def _times(values: list[str]) -> list[datetime]:
    out = []
    for value in values:
        try:
            out.append(datetime.fromisoformat(value))
        except ValueError:
            continue
    return out


def _hints(feed: FeedState, headers: dict[str, str] | None = None) -> Hints:
    headers = headers or {}
    return Hints(
        ttl_minutes=feed.ttl_minutes,
        cache_control=headers.get("cache-control"),
        expires=headers.get("expires"),
        retry_after=headers.get("retry-after"),
        date=headers.get("date"),
        skip_hours=frozenset(feed.skip_hours),
        skip_days=frozenset(feed.skip_days),
    )


def poll_feed(
    client: redis.Redis,
    fetcher: Fetcher,
    feed: FeedState,
    options: PollOptions,
    *,
    now: datetime,
    outage: bool = False,
    rng: random.Random | None = None,
) -> PollResult:
    bounds = feed_bounds(feed, options.bounds)
    permit = acquire_waiting(client, feed.url, options.host_limits)
    if not permit.granted:
        # The host stays busy with other feeds: try again later, nothing counted.
        wait = permit.wait + (rng or random).uniform(0.0, 1.0)
        at = now + timedelta(seconds=wait)
        return PollResult(feed, "deferred", NextPoll(at, wait, f"host busy: {permit.host}"))
    full_fetch = _full_fetch_due(feed, now, options.unconditional_every)
    conditional = None if full_fetch else Conditional(feed.etag, feed.last_modified)
    try:
        result = fetcher.fetch(feed.url, conditional=conditional, headers=_request_headers(feed))
    except FetchError as exc:
        return _failed(feed, exc, bounds, now=now, outage=outage, rng=rng)
    finally:
        release(client, permit)
    return _classify(client, feed, result, options, bounds, now=now, full_fetch=full_fetch, rng=rng)


def acquire_waiting(
    client: redis.Redis, url: str, limits: HostLimits, *, patience: float = 5.0
) -> Permit:
    """A permit for ``url``'s host, waiting in place when the wait is short (the next
    slot of the host's rate is usually a fraction of a second away); a refused permit
    when the host stays busy longer than ``patience`` seconds."""
    waited = 0.0
    while True:
        permit = acquire(client, url, limits, now=time.time())
        if permit.granted or waited + permit.wait > patience:
            return permit
        time.sleep(permit.wait)
        waited += permit.wait


def _request_headers(feed: FeedState) -> dict[str, str]:
    headers = dict(feed.headers)
    if feed.user_agent:
        headers["User-Agent"] = feed.user_agent
    return headers


def _full_fetch_due(feed: FeedState, now: datetime, every: float) -> bool:
    if not feed.last_full_fetch_at:
        return True
    last = datetime.fromisoformat(feed.last_full_fetch_at)
    return (now - last).total_seconds() >= every


def _polled(
    now: datetime, status: int | None, feed_status: FeedStatus, **more: Any
) -> dict[str, Any]:
    return {"last_poll_at": iso(now), "last_http_status": status, "status": feed_status, **more}


def _failed(
    feed: FeedState,
    exc: FetchError,
    bounds: Bounds,
    *,
    now: datetime,
    outage: bool,
    rng: random.Random | None,
) -> PollResult:
    error = f"{exc.kind}: {exc}"
    if exc.transient and outage:
        # Most polls fail at once: our network, not this feed. Not counted against it.
        at = next_poll(
            now,
            "transient_error",
            consecutive_errors=feed.consecutive_errors,
            hints=_hints(feed),
            bounds=bounds,
            rng=rng,
            outage=True,
        )
        updates = _polled(now, None, feed.status, last_error=f"{error} (network outage)")
        return PollResult(feed, "transient_error", at, updates, error=error, reached_host=False)
    errors = feed.consecutive_errors + 1
    outcome: Outcome = "transient_error" if exc.transient else "permanent_error"
    status: FeedStatus = "backoff" if exc.transient else "failing"
    at = next_poll(
        now, outcome, consecutive_errors=errors, hints=_hints(feed), bounds=bounds, rng=rng
    )
    updates = _polled(
        now, None, status, last_error=error, consecutive_errors=errors, status_reason=error
    )
    return PollResult(
        feed,
        outcome,
        at,
        updates,
        error=error,
        reached_host=exc.kind not in ("timeout", "connect", "dns"),
    )


def _classify(
    client: redis.Redis,
    feed: FeedState,
    result: FetchResult,
    options: PollOptions,
    bounds: Bounds,
    *,
    now: datetime,
    full_fetch: bool,
    rng: random.Random | None,
) -> PollResult:
    status = result.status
    headers = dict(result.headers)
    # A feed only moves to where it is found: a 301 to a 404 is no new home.
    found = 200 <= status < 300 or status == 304
    redirect = _redirect_updates(feed, result, options.redirect_confirmations) if found else {}
    new_url = redirect.pop("new_url", None)
    base = {**redirect, **({"last_full_fetch_at": iso(now)} if full_fetch else {})}

    def error_result(outcome: Outcome, feed_status: FeedStatus, error: str) -> PollResult:
        errors = feed.consecutive_errors + 1
        at = next_poll(
            now,
            outcome,
            consecutive_errors=errors,
            hints=_hints(feed, headers),
            bounds=bounds,
            rng=rng,
        )
        updates = _polled(
            now,
            status,
            feed_status,
            last_error=error,
            status_reason=error,
            consecutive_errors=errors,
            **base,
        )
        return PollResult(
            feed,
            outcome,
            at,
            updates,
            http_status=status,
            error=error,
            reached_host=True,
            new_url=new_url,
        )

    if status == 410:
        reason = "410 Gone: the publisher removed the feed"
        updates = _polled(
            now, status, "disabled", status_reason=reason, last_error=reason, enabled=False, **base
        )
        return PollResult(
            feed, "gone", None, updates, http_status=status, error=reason, reached_host=True
        )
    if status in (429, 503):
        return error_result("rate_limited", "backoff", f"HTTP {status}: rate limited")
    if status == 403 and "challenge" in headers.get("cf-mitigated", "").lower():
        return error_result("challenge", "challenge", "HTTP 403: bot challenge (cf-mitigated)")
    if status >= 500:
        return error_result("transient_error", "backoff", f"HTTP {status}")
    if status >= 400:
        return error_result("permanent_error", "failing", f"HTTP {status}")
    validators = {
        "etag": result.etag or feed.etag,
        "last_modified": result.last_modified or feed.last_modified,
    }
    ok = {
        "consecutive_errors": 0,
        "last_error": None,
        "status_reason": None,
        "last_new_entries": 0,
        **validators,
        **base,
    }
    entry_times = _times(feed.entry_times)

    def not_modified() -> PollResult:
        at = next_poll(
            now,
            "not_modified",
            entry_times=entry_times,
            hints=_hints(feed, headers),
            bounds=bounds,
            rng=rng,
        )
        return PollResult(
            feed,
            "not_modified",
            at,
            _polled(now, status, "ok", **ok),
            http_status=status,
            reached_host=True,
            new_url=new_url,
        )

    if status == 304:
        return not_modified()
    if not result.body:
        return error_result("permanent_error", "failing", f"HTTP {status}: an empty response")

    body_hash = hashlib.sha256(result.body).hexdigest()[:32]
    if body_hash == feed.body_hash:
        return not_modified()  # servers that ignore validators: the same bytes count as 304
    try:
        parsed = parse_feed(
            result.body, content_type=headers.get("content-type"), url=result.final_url
        )
    except FeedParseError as exc:
        return error_result("permanent_error", "failing", f"not a feed: {exc}")

    keys = entry_keys(parsed, preferred=_key_mode(feed.key_mode))
    fingerprints = [content_fingerprint(entry) for entry in parsed.entries]
    # Entries are recorded under their keys of every kind, so a feed that switches kinds
    # (guid → link → hash) still recognises them.
    kinds = [keys_in_mode(parsed, mode) for mode in ("guid", "link", "hash")]
    checks = check_entries(
        client,
        feed.id,
        keys.keys,
        fingerprints,
        max_changes=options.max_changes,
        aliases=list(zip(*kinds, strict=True)),
        look_up_aliases=keys.mode != _key_mode(feed.key_mode),
    )
    documents = [
        entry_document(entry, parsed, feed_url=feed.url, teaser_max_words=options.teaser_max_words)
        for entry, check in zip(parsed.entries, checks, strict=True)
        if check.wanted
    ]
    times = sorted(
        {t for e in parsed.entries if (t := e.published_at or e.updated_at)}, reverse=True
    )[:ENTRY_TIMES_KEPT]
    hinted = _with_feed_hints(feed, parsed)
    at = next_poll(
        now,
        "updated",
        entry_times=times or entry_times,
        hints=_hints(hinted, headers),
        bounds=bounds,
        rng=rng,
    )
    updates = _polled(
        now,
        status,
        "ok",
        **{
            **ok,
            "last_error": f"ill-formed feed, parsed anyway: {parsed.problem}"
            if parsed.problem
            else None,
            "last_new_entries": len(documents),
        },
        body_hash=body_hash,
        entry_times=[iso(t) for t in times] or feed.entry_times,
        entries_seen=feed.entries_seen + sum(1 for c in checks if c.novelty == "new"),
        key_mode=keys.mode,
        key_mode_reason=keys.reason,
        ttl_minutes=parsed.ttl_minutes,
        skip_hours=sorted(parsed.skip_hours),
        skip_days=sorted(parsed.skip_days),
    )
    return PollResult(
        feed,
        "updated",
        at,
        updates,
        documents,
        checks,
        http_status=status,
        reached_host=True,
        new_url=new_url,
    )


def finish_poll(client: redis.Redis, claim: Claim, result: PollResult, *, seen_ttl: int) -> bool:
    """Record a poll whose new entries were handed on: mark the entries seen (or, not
    modified, keep them), store the feed's state and next poll time (completing the
    lease), move a feed whose permanent redirect was confirmed. False when the lease was
    lost to a newer claim."""
    if result.checks:
        mark_entries(client, result.feed.id, result.checks, ttl=seen_ttl, now=time.time())
    elif result.outcome == "not_modified":
        renew_entries(client, result.feed.id, ttl=seen_ttl)
    updates = dict(result.updates)
    counter = "deferrals" if result.outcome == "deferred" else "polls"
    updates[counter] = getattr(result.feed, counter) + 1
    if result.new_url and not set_url(client, result.feed, result.new_url):
        updates["status_reason"] = (
            f"permanent redirect to {result.new_url}, which another feed has: not followed"
        )
    next_at = result.next_poll.at if result.next_poll else None
    return complete_poll(client, claim, updates, next_at)


def crashed(
    feed: FeedState, error: BaseException, options: PollOptions, *, now: datetime
) -> PollResult:
    """A poll that failed on a bug of ours: recorded as a permanent error (retried at the
    maximum interval, visible in the feed's state) rather than retried every lease."""
    message = f"crash: {type(error).__name__}: {error}"
    bounds = feed_bounds(feed, options.bounds)
    at = next_poll(
        now, "permanent_error", consecutive_errors=feed.consecutive_errors + 1, bounds=bounds
    )
    updates = _polled(
        now,
        None,
        "failing",
        last_error=message,
        status_reason=message,
        consecutive_errors=feed.consecutive_errors + 1,
    )
    return PollResult(feed, "permanent_error", at, updates, error=message)


def _with_feed_hints(feed: FeedState, parsed: ParsedFeed) -> FeedState:
    return replace(
        feed,
        ttl_minutes=parsed.ttl_minutes,
        skip_hours=sorted(parsed.skip_hours),
        skip_days=sorted(parsed.skip_days),
    )


def _key_mode(value: str) -> Literal["guid", "link", "hash"]:
    return value if value in ("guid", "link", "hash") else "guid"  # type: ignore[return-value]


def _redirect_updates(feed: FeedState, result: FetchResult, needed: int) -> dict[str, Any]:
    """Count a permanent redirect seen poll after poll; once seen ``needed`` times in a
    row to the same place, the feed's URL changes (one stray 301 does not move it)."""
    target = result.permanent_redirect
    if not target or target == feed.url:
        return {"redirect_to": None, "redirect_count": 0} if feed.redirect_to else {}
    count = feed.redirect_count + 1 if target == feed.redirect_to else 1
    if count >= needed:
        return {"redirect_to": None, "redirect_count": 0, "new_url": target}
    return {"redirect_to": target, "redirect_count": count}
