"""When to poll a feed next: one pure function of what the last poll saw.

:func:`next_poll` takes the poll's outcome, the entry times currently in the feed, the
server's hints and the feed's error count, and returns the next poll time with a reason an
operator can read. No I/O, no clock: the caller passes ``now`` (and an ``rng`` in tests).

Rules, in the order they apply:

* **Adaptive interval** (``updated``, ``not_modified``). From the entry times within
  :data:`LOOKBACK` (30 days: a month shows a weekly feed's rhythm; older entries say
  little about today) and not later than ``now`` + :data:`CLOCK_SKEW` (10 minutes of clock
  or time-zone slop; later ones are bogus and dropped, earlier ones count as ``now``), the
  mean gap between entries is the time from the oldest entry to *now* divided by the
  number of gaps between entries. Counting the quiet time since the newest entry lets a
  feed that went silent slow down by itself, and a feed that just posted is not taken
  for faster than it is. A gap more than :data:`OUTLIER_FACTOR` (20) times the median
  non-zero gap (a pinned or revived old entry) is dropped; that is far beyond a night or
  weekend pause of a feed that posts in office hours, and dropping only ever shortens the
  interval, which costs a cheap conditional GET rather than a late article. We poll
  :data:`POLLS_PER_GAP` (2) times per expected entry: interval = mean gap / 2. Fewer than
  two usable times, or all identical → ``default_interval``.
* **Server hints** can lengthen the interval, never shorten it: RSS ``ttl``,
  ``Cache-Control: max-age``, ``Expires``. Following HTTP caching (RFC 9111 §5.3),
  ``Expires`` is read only when there is no valid ``max-age``, and neither counts when
  ``Cache-Control`` says ``no-cache`` (unqualified) or ``no-store``. ``Expires`` is read
  against the response's ``Date`` when given (the server's clock, immune to skew); a past
  ``Expires`` is 0. Invalid values are ignored.
* **Rate limited** (429, 503): the larger of ``Retry-After`` (seconds or an HTTP-date, read
  against ``Date`` when given) and the error backoff. ``Retry-After`` is honoured only up
  to ``max_interval``: a feed must not vanish for days on one header, and the ceiling is
  what an operator configured as "the longest we go without looking".
* **Transient error** (timeouts, 5xx, DNS, refused): ``min_interval × 2^(n-1)``, capped at
  ``max_interval``, where ``n`` = ``consecutive_errors`` counts this failure (1 for the
  first). Nothing here disables a feed; every outcome gets a time.
* **Permanent error, challenge**: ``max_interval`` (the caller marks the feed failing, or
  disables it on 410; it still gets a time).
* **Outage** (``outage=True``: most feeds failed at once, our network is down): a failure
  is not counted; the feed is retried at its current backoff (``n`` = the errors it had,
  at least 1) whatever the outcome, so it comes back quickly when the network does.
* **Jitter**: uniform in ``[0, min(jitter × interval, max_jitter)]``, added so that feeds
  due together drift apart. Where adding it would pass ``max_interval`` it is reflected
  back below the ceiling, so feeds parked at the maximum (errors, quiet feeds) still
  spread out, but never below what the server asked for (hints, ``Retry-After``).
* **Clamp**: the interval is kept within ``[min_interval, max_interval]`` (server hints
  included).
* **skipHours / skipDays** (GMT) apply last, to every outcome, and are the one rule that
  may push a poll past ``max_interval``: the publisher said not to come then. A pushed
  poll lands at the start of the next allowed hour plus the same jitter. If every hour
  (or every day) is skipped, that list is ignored: it cannot be what the publisher meant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from itertools import pairwise
from statistics import median
from typing import Literal

Outcome = Literal[
    "updated", "not_modified", "transient_error", "permanent_error", "rate_limited", "challenge"
]

LOOKBACK = timedelta(days=30)
CLOCK_SKEW = timedelta(minutes=10)
OUTLIER_FACTOR = 20
POLLS_PER_GAP = 2

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_INDEX = {name.lower(): index for index, name in enumerate(DAYS)}
_FAILURES = frozenset({"transient_error", "permanent_error", "rate_limited", "challenge"})
_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class Bounds:
    """Limits of the polling interval, in seconds."""

    min_interval: float = 300
    max_interval: float = 86400
    default_interval: float = 3600
    jitter: float = 0.1  # share of the interval
    max_jitter: float = 300  # seconds

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError("need 0 < min_interval <= max_interval")
        if self.jitter < 0 or self.max_jitter < 0:
            raise ValueError("jitter and max_jitter must not be negative")


@dataclass(frozen=True, slots=True)
class Hints:
    """What the server said about polling (all optional)."""

    ttl_minutes: int | None = None
    cache_control: str | None = None
    expires: str | None = None  # HTTP-date
    retry_after: str | None = None  # delta-seconds or HTTP-date
    date: str | None = None  # the response's Date: reads Expires on the server's clock
    skip_hours: frozenset[int] = frozenset()  # GMT hours 0-23
    skip_days: frozenset[str] = frozenset()  # "Monday"…"Sunday"


@dataclass(frozen=True, slots=True)
class NextPoll:
    at: datetime  # aware UTC
    interval: float  # seconds from now (after clamping, jitter, skips)
    reason: str  # e.g. "adaptive 2h (9 entries/day)", "retry-after 600s", "backoff #3 (20m)"


def next_poll(
    now: datetime,
    outcome: Outcome,
    *,
    entry_times: Sequence[datetime] = (),
    consecutive_errors: int = 0,
    hints: Hints = Hints(),
    bounds: Bounds = Bounds(),
    rng: random.Random | None = None,
    outage: bool = False,
) -> NextPoll:
    """The next poll time after a poll that ended in ``outcome`` (rules: module docstring)."""
    now = _utc(now)
    server_now = _http_date(hints.date) or now
    floor = 0.0  # what the server asked for: reflected jitter never goes below it
    if outage and outcome in _FAILURES:
        base, reason = _backoff(max(1, consecutive_errors), bounds)
        reason += f", {outcome.replace('_', ' ')} during outage, not counted"
    elif outcome in ("updated", "not_modified"):
        base, reason = adaptive_interval(entry_times, now, bounds)
        for name, value in _freshness_hints(hints, now, server_now):
            floor = max(floor, value)
            if value > base:
                base, reason = value, f"{name} {_duration(value)}"
    elif outcome == "transient_error":
        base, reason = _backoff(consecutive_errors, bounds)
    elif outcome == "rate_limited":
        base, reason = _backoff(consecutive_errors, bounds)
        reason += ", rate limited"
        retry = parse_retry_after(hints.retry_after, server_now)
        if retry is not None:
            floor = retry
            if retry >= base:
                base, reason = retry, f"retry-after {retry:.0f}s"
    elif outcome in ("permanent_error", "challenge"):
        base = bounds.max_interval
        reason = f"{outcome.replace('_', ' ')}, max {_duration(base)}"
    else:
        raise ValueError(f"unknown outcome {outcome!r}")

    interval = _clamp(base, bounds)
    if base > bounds.max_interval:
        reason += f", capped at {_duration(bounds.max_interval)}"
    elif base < bounds.min_interval:
        reason += f", raised to {_duration(bounds.min_interval)}"
    floor = _clamp(floor, bounds)

    spread = min(bounds.jitter * interval, bounds.max_jitter)
    jitter = rng.uniform(0, spread) if rng is not None else _RNG.uniform(0, spread)
    interval += jitter
    if interval > bounds.max_interval:  # reflect at the ceiling
        interval = max(2 * bounds.max_interval - interval, floor, bounds.min_interval)

    at = now + timedelta(seconds=interval)
    allowed = skip_to_allowed(at, hints.skip_hours, hints.skip_days)
    if allowed != at:
        at = skip_to_allowed(allowed + timedelta(seconds=jitter), hints.skip_hours, hints.skip_days)
        reason += f", skipHours/skipDays: {allowed:%a %H:%M} UTC"
    return NextPoll(at=at, interval=(at - now).total_seconds(), reason=reason)


def adaptive_interval(
    entry_times: Sequence[datetime], now: datetime, bounds: Bounds
) -> tuple[float, str]:
    """Interval from the feed's entry rate, clamped to ``bounds``, and why."""
    now = _utc(now)
    if not entry_times:
        return bounds.default_interval, f"default {_duration(bounds.default_interval)} (no dates)"
    times = sorted(
        min(t, now) for t in map(_utc, entry_times) if now - LOOKBACK <= t <= now + CLOCK_SKEW
    )
    if len(times) < 2 or times[0] == times[-1]:
        why = "no usable dates" if not times else "one date" if len(times) == 1 else "equal dates"
        return bounds.default_interval, f"default {_duration(bounds.default_interval)} ({why})"
    gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
    typical = median(g for g in gaps if g > 0)
    kept = [g for g in gaps if g <= OUTLIER_FACTOR * typical]
    quiet = (now - times[-1]).total_seconds()
    mean_gap = (sum(kept) + quiet) / len(kept)
    interval = _clamp(mean_gap / POLLS_PER_GAP, bounds)
    per_day = 86400 / mean_gap
    return interval, f"adaptive {_duration(interval)} ({per_day:.3g} entries/day)"


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date, read
    against ``now``); a past date is 0; None if absent or invalid."""
    if value is None or not (value := value.strip()):
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    return max(0.0, (when - _utc(now)).total_seconds())


def max_age(cache_control: str | None) -> float | None:
    """``max-age`` seconds of a ``Cache-Control`` value; None if absent, invalid, or the
    response must not be reused (unqualified ``no-cache``, ``no-store``)."""
    directives = _cache_directives(cache_control)
    if not _reusable(directives):
        return None
    value = directives.get("max-age")
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return float(value)


def expires_in(expires: str | None, now: datetime, date: str | None = None) -> float | None:
    """Seconds until ``Expires``, on the server's clock when its ``Date`` is given and valid
    (else against ``now``); a past date is 0; None if absent or invalid."""
    when = _http_date(expires)
    if when is None:
        return None
    reference = _http_date(date) or _utc(now)
    return max(0.0, (when - reference).total_seconds())


def skip_to_allowed(at: datetime, skip_hours: Iterable[int], skip_days: Iterable[str]) -> datetime:
    """``at`` if RSS ``skipHours``/``skipDays`` (GMT) allow it, else the start of the next
    allowed hour. A list that skips everything is ignored; unknown values are ignored."""
    at = _utc(at)
    hours = {h % 24 for h in skip_hours if 0 <= h <= 24}  # some feeds write 24 for midnight
    days = {_DAY_INDEX[d.strip().lower()] for d in skip_days if d.strip().lower() in _DAY_INDEX}
    if len(hours) == 24:
        hours = set()
    if len(days) == 7:
        days = set()
    # At most 7 days of hour steps: a week holds every (day, hour) pair once.
    for _ in range(7 * 24 + 1):
        if at.weekday() in days:
            at = at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        elif at.hour in hours:
            at = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        else:
            return at
    raise AssertionError("unreachable: some hour of the week is allowed")


def _freshness_hints(hints: Hints, now: datetime, server_now: datetime) -> list[tuple[str, float]]:
    """The server's "nothing new before" hints that apply, as (name, seconds)."""
    found: list[tuple[str, float]] = []
    if hints.ttl_minutes is not None and hints.ttl_minutes > 0:
        found.append(("ttl", hints.ttl_minutes * 60.0))
    if not _reusable(_cache_directives(hints.cache_control)):
        return found
    age = max_age(hints.cache_control)
    if age is not None:
        found.append(("max-age", age))
    else:
        expiry = expires_in(hints.expires, now, hints.date)
        if expiry is not None:
            found.append(("expires", expiry))
    return found


def _cache_directives(cache_control: str | None) -> dict[str, str | None]:
    """Directive name → argument (None when bare); the first occurrence wins (RFC 9111)."""
    directives: dict[str, str | None] = {}
    for part in (cache_control or "").split(","):
        name, sep, arg = part.partition("=")
        name = name.strip().lower()
        if name and name not in directives:
            directives[name] = arg.strip().strip('"') if sep else None
    return directives


def _reusable(directives: dict[str, str | None]) -> bool:
    """False when the response must not be reused without asking again: ``no-store`` or a
    bare ``no-cache`` (``no-cache="Set-Cookie"`` only concerns the fields it names)."""
    return "no-store" not in directives and not (
        "no-cache" in directives and directives["no-cache"] is None
    )


def _backoff(consecutive_errors: int, bounds: Bounds) -> tuple[float, str]:
    n = max(1, consecutive_errors)
    # Exponent capped so a feed failing for months cannot overflow the float.
    base = min(bounds.min_interval * 2.0 ** min(n - 1, 64), bounds.max_interval)
    return base, f"backoff #{n} ({_duration(base)})"


def _clamp(seconds: float, bounds: Bounds) -> float:
    return min(max(seconds, bounds.min_interval), bounds.max_interval)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return _utc(parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _utc(moment: datetime) -> datetime:
    """Aware UTC; a naive time is taken as UTC (feedparser's parsed dates are)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _duration(seconds: float) -> str:
    """Two most significant units: "45s", "5m", "1h30m", "2d3h"."""
    if math.isinf(seconds) or math.isnan(seconds):
        return str(seconds)
    left = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts[:2]) or "0s"
