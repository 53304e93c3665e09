"""Table-driven tests of the poll scheduling rules (pipelines.schedule)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from pipelines.schedule import (
    DAYS,
    Bounds,
    Hints,
    Outcome,
    adaptive_interval,
    expires_in,
    max_age,
    next_poll,
    parse_retry_after,
    skip_to_allowed,
)

NOW = datetime(2024, 5, 15, 12, 0, tzinfo=UTC)  # a Wednesday
HOUR = 3600.0
DAY = 86400.0
BOUNDS = Bounds()


class FixedRandom(random.Random):
    """Every draw at the same point of its range: 0.0 is the low end, 1.0 the high end."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def low() -> FixedRandom:
    return FixedRandom(0.0)


def high() -> FixedRandom:
    return FixedRandom(1.0)


def every(gap: timedelta, count: int, newest: datetime = NOW) -> list[datetime]:
    """``count`` entry times ``gap`` apart, the newest at ``newest``."""
    return [newest - k * gap for k in range(count)]


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


HOURLY = every(timedelta(hours=1), 10)  # adaptive: 30 minutes


# --- adaptive interval -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "expected", "reason"),
    [
        (HOURLY, 1800, "adaptive 30m (24 entries/day)"),
        (every(timedelta(hours=2.4), 12), 4320, "adaptive 1h12m (10 entries/day)"),
        (every(timedelta(days=7), 4), DAY, "adaptive 1d (0.143 entries/day)"),
        (every(timedelta(minutes=1), 30), 300, "adaptive 5m (1.44e+03 entries/day)"),
        ([], 3600, "default 1h (no dates)"),
        ([NOW - timedelta(hours=5)], 3600, "default 1h (one date)"),
        ([NOW - timedelta(hours=5)] * 4, 3600, "default 1h (equal dates)"),
        (every(timedelta(days=1), 5, NOW - timedelta(days=40)), 3600, "(no usable dates)"),
        # Times far in the future are bogus: the same result as without them.
        ([*HOURLY, NOW + timedelta(days=3), NOW + timedelta(hours=2)], 1800, "adaptive 30m"),
        ([NOW + timedelta(days=1), NOW + timedelta(days=2)], 3600, "(no usable dates)"),
        # Within the clock skew a future time counts (as now): 2 gaps in 2h, not 1 gap in 2h.
        (
            [NOW - timedelta(hours=2), NOW - timedelta(hours=1), NOW + timedelta(minutes=5)],
            1800,
            "",
        ),
        # Quiet for 9 hours after 9 hourly gaps: (9h + 9h) / 9 gaps = 2h between entries.
        (every(timedelta(hours=1), 10, NOW - timedelta(hours=9)), 3600, "adaptive 1h (12 "),
        # A pinned entry from weeks ago is an outlier, not the feed's rhythm.
        ([*HOURLY, NOW - timedelta(days=20)], 1800, "adaptive 30m"),
        # Three entries at once each day: 8 gaps over 2 days, 6h apart on average.
        ([NOW - timedelta(days=d) for d in (0, 1, 2) for _ in range(3)], 3 * HOUR, "(4 entries"),
        # Naive times are UTC (feedparser's parsed dates are).
        ([t.replace(tzinfo=None) for t in HOURLY], 1800, "adaptive 30m"),
        # Times in another zone are compared as instants.
        ([t.astimezone(timezone(timedelta(hours=5))) for t in HOURLY], 1800, "adaptive 30m"),
    ],
    ids=[
        "1-per-hour",
        "10-per-day",
        "1-per-week-capped",
        "1-per-minute-raised-to-min",
        "no-dates",
        "one-date",
        "all-identical",
        "all-older-than-lookback",
        "future-dates-ignored",
        "only-future-dates",
        "small-skew-counts-as-now",
        "quiet-feed-slows-down",
        "pinned-old-entry-outlier",
        "bursts",
        "naive-as-utc",
        "other-time-zone",
    ],
)
def test_adaptive_interval(times: list[datetime], expected: float, reason: str) -> None:
    interval, why = adaptive_interval(times, NOW, BOUNDS)
    assert interval == pytest.approx(expected)
    assert reason in why


def test_adaptive_interval_uses_the_bounds_default() -> None:
    bounds = Bounds(default_interval=7200)
    assert adaptive_interval([], NOW, bounds) == (7200, "default 2h (no dates)")


# --- header parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120),
        (" 600 ", 600),
        ("0", 0),
        (http_date(NOW + timedelta(minutes=10)), 600),
        ("Wed, 15 May 2024 14:00:00 +0200", 0),  # 12:00 UTC: now
        (http_date(NOW - timedelta(hours=1)), 0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
    ids=[
        "seconds",
        "seconds-padded",
        "zero",
        "http-date",
        "http-date-offset",
        "past-date",
        "word",
        "negative",
        "fraction",
        "empty",
        "absent",
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=600", 600),
        ("public, max-age=3600, must-revalidate", 3600),
        ('MAX-AGE="120"', 120),
        ("max-age=60, max-age=7200", 60),  # the first occurrence wins
        ("max-age=0", 0),
        ('private, no-cache="Set-Cookie", max-age=900', 900),  # qualified no-cache
        ("no-cache, max-age=600", None),
        ("max-age=600, No-Store", None),
        ("max-age=abc", None),
        ("max-age=-5", None),
        ("max-age", None),
        ("public", None),
        ("", None),
        (None, None),
    ],
    ids=[
        "plain",
        "among-others",
        "quoted-upper",
        "first-wins",
        "zero",
        "qualified-no-cache",
        "no-cache",
        "no-store",
        "not-a-number",
        "negative",
        "no-value",
        "no-max-age",
        "empty",
        "absent",
    ],
)
def test_max_age(value: str | None, expected: float | None) -> None:
    assert max_age(value) == expected


@pytest.mark.parametrize(
    ("expires", "date", "expected"),
    [
        (http_date(NOW + timedelta(hours=1)), None, 3600),
        (http_date(NOW - timedelta(hours=1)), None, 0),
        # Server clock 2 hours behind ours: Expires is 1 hour after the server's Date.
        (http_date(NOW - timedelta(hours=1)), http_date(NOW - timedelta(hours=2)), 3600),
        # Server clock ahead: read against its Date, not ours.
        (http_date(NOW + timedelta(hours=3)), http_date(NOW + timedelta(hours=2)), 3600),
        (http_date(NOW + timedelta(hours=1)), "not a date", 3600),  # bad Date: our clock
        ("Wed, 15 May 2024 13:00:00 -0000", None, 3600),  # "-0000": UTC, no zone claimed
        ("0", None, None),
        ("tomorrow", None, None),
        ("", None, None),
        (None, http_date(NOW), None),
    ],
    ids=[
        "future",
        "past-is-zero",
        "server-clock-behind",
        "server-clock-ahead",
        "invalid-date-header",
        "minus-zero-zone",
        "zero",
        "word",
        "empty",
        "absent",
    ],
)
def test_expires_in(expires: str | None, date: str | None, expected: float | None) -> None:
    assert expires_in(expires, NOW, date) == expected


# --- updated / not modified: adaptive and hints -------------------------------------------


IN_3H = http_date(NOW + timedelta(hours=3))
ONE_HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("hints", "expected", "reason"),
    [
        (Hints(), 1800, "adaptive 30m (24 entries/day)"),
        (Hints(ttl_minutes=60), 3600, "ttl 1h"),
        (Hints(ttl_minutes=10), 1800, "adaptive 30m"),  # a hint never shortens
        (Hints(cache_control="public, max-age=7200"), 7200, "max-age 2h"),
        (Hints(cache_control="max-age=600"), 1800, "adaptive 30m"),
        (Hints(cache_control="no-cache, max-age=7200"), 1800, "adaptive 30m"),
        (Hints(cache_control="no-store, max-age=7200"), 1800, "adaptive 30m"),
        (Hints(expires=IN_3H), 3 * HOUR, "expires 3h"),
        (Hints(expires=IN_3H, cache_control="no-cache"), 1800, "adaptive 30m"),
        (Hints(expires=IN_3H, cache_control="no-store"), 1800, "adaptive 30m"),
        # max-age overrides Expires (RFC 9111), even when shorter.
        (Hints(expires=IN_3H, cache_control="max-age=600"), 1800, "adaptive 30m"),
        (Hints(expires=IN_3H, cache_control="max-age=abc"), 3 * HOUR, "expires 3h"),
        (Hints(ttl_minutes=60, cache_control="max-age=7200"), 7200, "max-age 2h"),
        (Hints(ttl_minutes=180, cache_control="max-age=7200", expires=IN_3H), 3 * HOUR, "ttl 3h"),
        (Hints(ttl_minutes=60, expires=IN_3H), 3 * HOUR, "expires 3h"),
        # The server's clock is 1 hour behind ours: its Expires is 2 hours after its Date.
        (
            Hints(expires=http_date(NOW + timedelta(hours=1)), date=http_date(NOW - ONE_HOUR)),
            2 * HOUR,
            "expires 2h",
        ),
        (Hints(ttl_minutes=2 * 24 * 60), DAY, "ttl 2d, capped at 1d"),
        (Hints(cache_control="max-age=31536000"), DAY, "max-age 365d, capped at 1d"),
        (
            Hints(ttl_minutes=0, cache_control="max-age=x", expires="0", date="garbage"),
            1800,
            "adaptive 30m",
        ),
        (Hints(ttl_minutes=-5, expires="Thu, 99 Foo 2024 25:61:00 GMT"), 1800, "adaptive 30m"),
    ],
    ids=[
        "no-hints",
        "ttl",
        "ttl-shorter-ignored",
        "max-age",
        "max-age-shorter-ignored",
        "no-cache-ignores-max-age",
        "no-store-ignores-max-age",
        "expires",
        "no-cache-ignores-expires",
        "no-store-ignores-expires",
        "max-age-overrides-expires",
        "invalid-max-age-falls-back-to-expires",
        "ttl-and-max-age",
        "ttl-max-age-expires",
        "ttl-and-expires",
        "expires-with-server-date-skew",
        "ttl-capped",
        "max-age-capped",
        "invalid-values-ignored",
        "more-invalid-values-ignored",
    ],
)
def test_updated_takes_the_longest_of_adaptive_and_hints(
    hints: Hints, expected: float, reason: str
) -> None:
    poll = next_poll(NOW, "updated", entry_times=HOURLY, hints=hints, rng=low())
    assert poll.interval == pytest.approx(expected)
    assert poll.at == NOW + timedelta(seconds=expected)
    assert poll.reason.startswith(reason)


def test_not_modified_follows_the_same_rules_as_updated() -> None:
    hints = Hints(ttl_minutes=90)
    for rng in (low(), high(), random.Random(7)):
        seed_state = rng.getstate()
        updated = next_poll(NOW, "updated", entry_times=HOURLY, hints=hints, rng=rng)
        rng.setstate(seed_state)
        same = next_poll(NOW, "not_modified", entry_times=HOURLY, hints=hints, rng=rng)
        assert same == updated


# --- errors ------------------------------------------------------------------------------


BACKOFF = [300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 76800, DAY]


@pytest.mark.parametrize(
    ("errors", "expected"),
    [*enumerate(BACKOFF, start=1), (0, 300), (50, DAY), (10_000, DAY)],
    ids=[f"error-{n}" for n in range(1, 11)] + ["zero-as-first", "50-capped", "10000-capped"],
)
def test_transient_error_backs_off_exponentially_to_the_max(errors: int, expected: float) -> None:
    poll = next_poll(NOW, "transient_error", consecutive_errors=errors, rng=low())
    assert poll.interval == expected
    assert poll.reason.startswith(f"backoff #{max(errors, 1)} (")


def test_transient_backoff_sequence_grows_and_stops_at_the_max() -> None:
    seq = [
        next_poll(NOW, "transient_error", consecutive_errors=n, rng=low()).interval
        for n in range(1, 11)
    ]
    assert seq == BACKOFF


@pytest.mark.parametrize(
    ("retry_after", "date", "errors", "expected", "reason"),
    [
        ("600", None, 1, 600, "retry-after 600s"),
        ("60", None, 1, 300, "backoff #1 (5m), rate limited"),
        ("120", None, 3, 1200, "backoff #3 (20m), rate limited"),
        (None, None, 2, 600, "backoff #2 (10m), rate limited"),
        (None, None, 0, 300, "backoff #1 (5m), rate limited"),
        ("100000", None, 1, DAY, "retry-after 100000s, capped at 1d"),
        (http_date(NOW + timedelta(hours=2)), None, 1, 7200, "retry-after 7200s"),
        # Date on the server's clock, 1 hour behind ours: wait 2 hours, not 1.
        (http_date(NOW + timedelta(hours=1)), http_date(NOW - timedelta(hours=1)), 1, 7200, ""),
        ("in a while", None, 2, 600, "backoff #2"),
    ],
    ids=[
        "retry-after-wins",
        "backoff-wins",
        "backoff-3-wins",
        "no-header",
        "zero-errors-as-first",
        "retry-after-capped-at-max",
        "retry-after-http-date",
        "retry-after-server-date-skew",
        "invalid-retry-after",
    ],
)
def test_rate_limited(
    retry_after: str | None, date: str | None, errors: int, expected: float, reason: str
) -> None:
    hints = Hints(retry_after=retry_after, date=date)
    poll = next_poll(NOW, "rate_limited", consecutive_errors=errors, hints=hints, rng=low())
    assert poll.interval == expected
    assert poll.reason.startswith(reason)


@pytest.mark.parametrize("outcome", ["permanent_error", "challenge"])
@pytest.mark.parametrize("errors", [1, 5, 100])
def test_permanent_error_and_challenge_retry_at_the_max(outcome: Outcome, errors: int) -> None:
    poll = next_poll(NOW, outcome, consecutive_errors=errors, rng=low())
    assert poll.interval == DAY
    assert poll.reason == f"{outcome.replace('_', ' ')}, max 1d"
    # Jitter at the ceiling is reflected below it: feeds parked at the max still spread.
    poll = next_poll(NOW, outcome, consecutive_errors=errors, rng=high())
    assert poll.interval == DAY - 300


@pytest.mark.parametrize(
    ("outcome", "errors", "expected"),
    [
        ("transient_error", 0, 300),
        ("transient_error", 3, 1200),  # its earlier 3 errors still count; this one does not
        ("permanent_error", 0, 300),
        ("challenge", 1, 300),
        ("rate_limited", 2, 600),
    ],
    ids=["first-transient", "transient-after-3", "permanent", "challenge", "rate-limited"],
)
def test_outage_failures_are_not_counted(outcome: Outcome, errors: int, expected: float) -> None:
    poll = next_poll(NOW, outcome, consecutive_errors=errors, outage=True, rng=low())
    assert poll.interval == expected
    assert "during outage, not counted" in poll.reason


def test_outage_does_not_change_a_successful_poll() -> None:
    normal = next_poll(NOW, "updated", entry_times=HOURLY, rng=low())
    assert next_poll(NOW, "updated", entry_times=HOURLY, outage=True, rng=low()) == normal


# --- jitter and clamping -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "kwargs", "base", "spread"),
    [
        ("transient_error", {"consecutive_errors": 1}, 300, 30),  # 10 % of 5 minutes
        ("updated", {"entry_times": HOURLY}, 1800, 180),
        ("transient_error", {"consecutive_errors": 5}, 4800, 300),  # 10 % capped at 300 s
        ("updated", {"hints": Hints(cache_control="max-age=86000")}, 86000, 300),
        ("rate_limited", {"hints": Hints(retry_after="7200")}, 7200, 300),
    ],
    ids=["min", "adaptive", "capped-spread", "near-max", "retry-after"],
)
def test_jitter_is_added_within_its_bounds(
    outcome: Outcome, kwargs: dict, base: float, spread: float
) -> None:
    assert next_poll(NOW, outcome, rng=low(), **kwargs).interval == base
    assert next_poll(NOW, outcome, rng=high(), **kwargs).interval == pytest.approx(base + spread)
    assert next_poll(NOW, outcome, rng=FixedRandom(0.5), **kwargs).interval == pytest.approx(
        base + spread / 2
    )
    seeded = random.Random(1234)
    draws = [next_poll(NOW, outcome, rng=seeded, **kwargs).interval for _ in range(200)]
    assert all(base <= d <= base + spread for d in draws)
    assert len(set(draws)) > 100  # it does vary


@pytest.mark.parametrize(
    ("hints", "rng_value", "expected"),
    [
        (Hints(cache_control="max-age=86200"), 1.0, 86300),  # 86500 reflected to 86300
        (Hints(cache_control="max-age=86350"), 1.0, 86350),  # reflection stops at the hint
        (Hints(ttl_minutes=2000), 1.0, DAY),  # hint at the max: exactly the max
        (Hints(), 1.0, 1980),
    ],
    ids=["reflected", "reflection-floored-at-hint", "hint-beyond-max", "far-from-ceiling"],
)
def test_jitter_at_the_ceiling_never_goes_below_the_server_hint(
    hints: Hints, rng_value: float, expected: float
) -> None:
    poll = next_poll(NOW, "updated", entry_times=HOURLY, hints=hints, rng=FixedRandom(rng_value))
    assert poll.interval == pytest.approx(expected)


def test_retry_after_at_the_max_is_not_shortened_by_jitter() -> None:
    hints = Hints(retry_after="200000")
    assert next_poll(NOW, "rate_limited", hints=hints, rng=high()).interval == DAY


OUTCOMES: list[Outcome] = [
    "updated",
    "not_modified",
    "transient_error",
    "permanent_error",
    "rate_limited",
    "challenge",
]


@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize(
    "bounds",
    [Bounds(), Bounds(min_interval=60, max_interval=600, default_interval=120, jitter=0.5)],
    ids=["default-bounds", "tight-bounds"],
)
def test_interval_always_within_bounds_without_skips(outcome: Outcome, bounds: Bounds) -> None:
    rng = random.Random(99)
    cases = [
        {"entry_times": every(timedelta(seconds=10), 50)},
        {"entry_times": every(timedelta(days=10), 3)},
        {"hints": Hints(ttl_minutes=100_000, retry_after="9999999", cache_control="max-age=1")},
        {"hints": Hints(retry_after="1", expires=http_date(NOW + timedelta(days=9)))},
        {"consecutive_errors": 40},
        {},
    ]
    for kwargs in cases:
        for _ in range(50):
            poll = next_poll(NOW, outcome, bounds=bounds, rng=rng, **kwargs)
            assert bounds.min_interval <= poll.interval <= bounds.max_interval
            assert poll.at == NOW + timedelta(seconds=poll.interval)


@pytest.mark.parametrize(
    ("bounds", "outcome", "kwargs", "expected", "reason"),
    [
        (Bounds(), "updated", {"entry_times": every(timedelta(seconds=30), 20)}, 300, "5m"),
        (Bounds(min_interval=900), "transient_error", {"consecutive_errors": 1}, 900, "#1"),
        (Bounds(max_interval=7200), "transient_error", {"consecutive_errors": 9}, 7200, "#9"),
        (Bounds(max_interval=7200), "challenge", {}, 7200, "challenge, max 2h"),
        (Bounds(min_interval=1800), "updated", {"entry_times": HOURLY}, 1800, "adaptive 30m"),
        (Bounds(min_interval=3600), "updated", {"entry_times": HOURLY}, 3600, "adaptive 1h"),
        (
            Bounds(max_interval=7200),
            "updated",
            {"hints": Hints(ttl_minutes=600)},
            7200,
            "ttl 10h, capped at 2h",
        ),
        (
            Bounds(min_interval=600),
            "rate_limited",
            {"hints": Hints(retry_after="30")},
            600,
            "backoff #1 (10m)",
        ),
        (
            Bounds(default_interval=60),
            "updated",
            {},
            300,
            "default 1m (no dates), raised to 5m",
        ),
    ],
    ids=[
        "adaptive-raised-to-min",
        "backoff-from-custom-min",
        "backoff-capped-at-custom-max",
        "challenge-at-custom-max",
        "adaptive-at-min",
        "adaptive-raised-to-custom-min",
        "hint-capped",
        "retry-after-below-min",
        "default-below-min",
    ],
)
def test_clamping(
    bounds: Bounds, outcome: Outcome, kwargs: dict, expected: float, reason: str
) -> None:
    poll = next_poll(NOW, outcome, bounds=bounds, rng=low(), **kwargs)
    assert poll.interval == expected
    assert reason in poll.reason


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_interval": 0},
        {"min_interval": 600, "max_interval": 300},
        {"jitter": -0.1},
        {"max_jitter": -1},
    ],
    ids=["zero-min", "min-above-max", "negative-jitter", "negative-max-jitter"],
)
def test_invalid_bounds_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Bounds(**kwargs)


def test_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        next_poll(NOW, "exploded")  # type: ignore[arg-type]


# --- skipHours / skipDays ----------------------------------------------------------------


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in the week of 13 May 2024 (Monday 13 … Sunday 19, then Monday 20)."""
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


WEEKEND = frozenset({"Saturday", "Sunday"})
ALL_DAYS = frozenset(DAYS)


@pytest.mark.parametrize(
    ("moment", "hours", "days", "expected"),
    [
        (at(15, 10, 30), frozenset({11, 12}), frozenset(), at(15, 10, 30)),
        (at(15, 11, 30), frozenset({11, 12}), frozenset(), at(15, 13)),
        (at(15, 22, 30), frozenset({22, 23, 0, 1}), frozenset(), at(16, 2)),
        (at(15, 23, 59), frozenset({23}), frozenset(), at(16, 0)),
        (at(18, 10), frozenset(), WEEKEND, at(20, 0)),
        (at(19, 23, 30), frozenset(), frozenset({"Sunday"}), at(20, 0)),
        (at(19, 23, 30), frozenset({0, 1, 2}), WEEKEND, at(20, 3)),
        (at(17, 22), frozenset({22, 23}), frozenset({"Saturday"}), at(19, 0)),
        (at(15, 12), frozenset(range(24)), frozenset(), at(15, 12)),
        (at(15, 12), frozenset(), ALL_DAYS, at(15, 12)),
        (at(15, 12), frozenset(range(24)), frozenset({"Wednesday"}), at(16, 0)),
        (at(15, 12), frozenset(range(13)), ALL_DAYS - {"Wednesday"}, at(15, 13)),
        (at(15, 0, 10), frozenset({24}), frozenset(), at(15, 1)),
        (at(15, 12), frozenset({-1, 99}), frozenset({"Funday", ""}), at(15, 12)),
        (at(18, 9), frozenset(), frozenset({" saturday ", "SUNDAY"}), at(20, 0)),
    ],
    ids=[
        "allowed-unchanged",
        "skipped-hour",
        "hours-across-midnight",
        "last-minute-of-day",
        "weekend",
        "sunday-across-week",
        "days-and-hours-across-week",
        "saturday-after-skipped-hours",
        "all-hours-ignored",
        "all-days-ignored",
        "all-hours-ignored-days-kept",
        "only-one-allowed-hour-a-week",
        "hour-24-is-midnight",
        "invalid-values-ignored",
        "day-names-any-case",
    ],
)
def test_skip_to_allowed(
    moment: datetime, hours: frozenset[int], days: frozenset[str], expected: datetime
) -> None:
    assert skip_to_allowed(moment, hours, days) == expected


def test_skip_to_allowed_answers_in_utc() -> None:
    cest = timezone(timedelta(hours=2))
    moment = datetime(2024, 5, 15, 13, 30, tzinfo=cest)  # 11:30 UTC
    result = skip_to_allowed(moment, frozenset({11}), frozenset())
    assert result == at(15, 12) and result.tzinfo == UTC


@pytest.mark.parametrize(
    ("outcome", "hints", "rng", "expected_at", "reason"),
    [
        # 12:30 falls in skipped 12-13 GMT: 14:00.
        ("updated", Hints(skip_hours=frozenset({12, 13})), low(), at(15, 14), "adaptive 30m"),
        # The same jitter is added after the skip (10 % of 30 minutes).
        ("updated", Hints(skip_hours=frozenset({12, 13})), high(), at(15, 14, 3), "skipHours"),
        # Skips may push past max_interval: Thursday is skipped, so Friday.
        (
            "permanent_error",
            Hints(skip_days=frozenset({"Thursday"})),
            low(),
            at(17, 0),
            "permanent error, max 1d, skipHours/skipDays: Fri 00:00 UTC",
        ),
        (
            "transient_error",
            Hints(skip_hours=frozenset({12}), skip_days=frozenset({"Wednesday"})),
            low(),
            at(16, 0),
            "backoff #1",
        ),
        ("updated", Hints(skip_hours=frozenset(range(24))), low(), at(15, 12, 30), "adaptive"),
    ],
    ids=["skip-hours", "skip-hours-keeps-jitter", "past-max", "error-skipped", "all-skipped"],
)
def test_next_poll_honours_skips(
    outcome: Outcome, hints: Hints, rng: random.Random, expected_at: datetime, reason: str
) -> None:
    poll = next_poll(NOW, outcome, entry_times=HOURLY, hints=hints, rng=rng)
    assert poll.at == expected_at
    assert poll.interval == (expected_at - NOW).total_seconds()
    assert reason in poll.reason


# --- the result ----------------------------------------------------------------------------


def test_result_is_aware_utc_whatever_zone_now_is_in() -> None:
    tokyo = timezone(timedelta(hours=9))
    poll = next_poll(NOW.astimezone(tokyo), "transient_error", consecutive_errors=2, rng=low())
    assert poll.at == NOW + timedelta(minutes=10)
    assert poll.at.tzinfo == UTC


def test_seeded_rng_makes_it_deterministic() -> None:
    def run(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [next_poll(NOW, "updated", entry_times=HOURLY, rng=rng).interval for _ in range(5)]

    assert run(5) == run(5)
    assert run(5) != run(6)
