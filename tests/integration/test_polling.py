"""Polling one feed against a real local HTTP server and a real Redis: the poll stage
(`pipelines/poll.py`) as the poll task runs it, minus Celery."""

from __future__ import annotations

import gzip
import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import redis

from pipelines.feedstore import (
    FeedSpec,
    FeedState,
    add_feed,
    claim_due,
    claim_feed,
    claimed_feed,
    complete_poll,
    find_feed,
    get_feed,
    list_feeds,
    network_outage,
    record_poll_health,
    sync_feeds,
)
from pipelines.fetch import Fetcher, FetchLimits
from pipelines.politeness import HostLimits
from pipelines.poll import PollOptions, PollResult, crashed, finish_poll, poll_feed
from pipelines.schedule import Bounds
from tests.feedserver import FeedServer

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
OPTIONS = PollOptions(
    bounds=Bounds(min_interval=300, max_interval=86400, default_interval=3600),
    host_limits=HostLimits(max_concurrent=64, per_minute=600000),
    unconditional_every=86400,
    redirect_confirmations=3,
    max_changes=2,
    teaser_max_words=120,
)


def rss(*items: tuple[str, str], title: str = "Test feed") -> bytes:
    """An RSS 2.0 feed of (guid, title) items, each with a full article body."""
    body = "".join(
        f"<item><guid>{guid}</guid><title>{name}</title><link>https://news.example/{guid}</link>"
        f"<pubDate>Mon, 03 Feb 2020 20:{i:02}:00 GMT</pubDate>"
        f"<description><![CDATA[<p>{name}: {'a full paragraph of article text. ' * 40}</p>]]>"
        f"</description></item>"
        for i, (guid, name) in enumerate(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}'
        f"</title><link>https://news.example/</link>{body}</channel></rss>"
    ).encode()


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(
        FetchLimits(
            allow_private_networks=True,
            read_timeout=2,
            total_timeout=4,
            max_bytes=200_000,
            max_decompressed_bytes=2_000_000,
        )
    ) as f:
        yield f


class Poller:
    """Polls a feed the way the poll task does: claim, poll, finish."""

    def __init__(self, client: redis.Redis, fetcher: Fetcher, seen_ttl: int = 3600) -> None:
        self.client, self.fetcher, self.seen_ttl = client, fetcher, seen_ttl
        self.now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def add(self, url: str) -> FeedState:
        state, _ = add_feed(self.client, url, now=self.now)
        return state

    def poll(self, url: str, *, outage: bool = False, advance: float = 3600) -> PollResult:
        feed = find_feed(self.client, url)
        assert feed is not None
        self.now += timedelta(seconds=advance)
        claim = claim_feed(self.client, feed.id, self.now, lease=300)
        state = claimed_feed(self.client, claim)
        assert state is not None
        result = poll_feed(
            self.client,
            self.fetcher,
            state,
            OPTIONS,
            now=self.now,
            outage=outage,
            rng=random.Random(1),
        )
        assert finish_poll(self.client, claim, result, seen_ttl=self.seen_ttl)
        return result

    def state(self, url: str) -> FeedState:
        feed = find_feed(self.client, url)
        assert feed is not None
        return feed


@pytest.fixture
def poller(redis_client: redis.Redis, fetcher: Fetcher) -> Poller:
    return Poller(redis_client, fetcher)


def titles(result: PollResult) -> list[str | None]:
    return [doc.feed.title if doc.feed else None for doc in result.documents]


def test_only_new_entries_go_through_exactly_once(poller: Poller, feed_server: FeedServer) -> None:
    url = feed_server.route(
        "/feed.xml",
        body=rss(("a", "First"), ("b", "Second")),
        headers={"Content-Type": "application/rss+xml"},
    )
    poller.add(url)
    first = poller.poll(url)
    assert first.outcome == "updated" and titles(first) == ["First", "Second"]
    # Same bytes again (a server ignoring validators): not modified, nothing new.
    again = poller.poll(url)
    assert again.outcome == "not_modified" and again.documents == []
    # The feed changes: one new entry at the top, one old one dropped.
    feed_server.route(
        "/feed.xml",
        body=rss(("c", "Third"), ("a", "First")),
        headers={"Content-Type": "application/rss+xml"},
    )
    changed = poller.poll(url)
    assert titles(changed) == ["Third"]
    # An old entry re-published after it left the feed is a tombstone, not new.
    feed_server.route("/feed.xml", body=rss(("b", "Second"), ("c", "Third")))
    assert poller.poll(url).documents == []
    state = poller.state(url)
    assert state.entries_seen == 3 and state.status == "ok" and state.polls == 4


def test_a_changed_entry_is_processed_again_a_bounded_number_of_times(
    poller: Poller, feed_server: FeedServer
) -> None:
    url = feed_server.route("/feed.xml", body=rss(("a", "Version 0")))
    poller.add(url)
    assert titles(poller.poll(url)) == ["Version 0"]
    reprocessed = []
    for version in range(1, 5):
        feed_server.route("/feed.xml", body=rss(("a", f"Version {version}")))
        reprocessed += titles(poller.poll(url))
    assert reprocessed == ["Version 1", "Version 2"]  # max_changes = 2


def test_conditional_get_304_and_etag_change(poller: Poller, feed_server: FeedServer) -> None:
    url = feed_server.route(
        "/feed.xml",
        body=rss(("a", "First")),
        etag='"v1"',
        last_modified="Mon, 05 Jan 2026 10:00:00 GMT",
    )
    poller.add(url)
    assert poller.poll(url).outcome == "updated"
    state = poller.state(url)
    assert (state.etag, state.last_modified) == ('"v1"', "Mon, 05 Jan 2026 10:00:00 GMT")
    result = poller.poll(url)
    assert result.outcome == "not_modified" and result.http_status == 304
    request = feed_server.requests[-1]
    assert request.headers["if-none-match"] == '"v1"'
    assert request.headers["if-modified-since"] == "Mon, 05 Jan 2026 10:00:00 GMT"
    feed_server.route("/feed.xml", body=rss(("b", "Second"), ("a", "First")), etag='"v2"')
    result = poller.poll(url)
    assert titles(result) == ["Second"] and poller.state(url).etag == '"v2"'


def test_an_unconditional_fetch_now_and_then(poller: Poller, feed_server: FeedServer) -> None:
    url = feed_server.route("/feed.xml", body=rss(("a", "First")), etag='"v1"')
    poller.add(url)
    poller.poll(url)
    poller.poll(url, advance=600)
    assert "if-none-match" in feed_server.requests[-1].headers
    poller.poll(url, advance=86400)  # a day after the last full fetch
    assert "if-none-match" not in feed_server.requests[-1].headers


def test_gzip_feed(poller: Poller, feed_server: FeedServer) -> None:
    url = feed_server.route("/feed.xml", body=rss(("a", "Zipped")), gzip=True)
    poller.add(url)
    result = poller.poll(url)
    assert titles(result) == ["Zipped"]
    assert feed_server.requests[-1].headers["accept-encoding"].startswith("gzip")


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limited_honours_retry_after(
    poller: Poller, feed_server: FeedServer, status: int
) -> None:
    url = feed_server.route("/feed.xml", status=status, headers={"Retry-After": "7200"})
    poller.add(url)
    result = poller.poll(url)
    assert result.outcome == "rate_limited"
    assert result.next_poll is not None and result.next_poll.interval >= 7200
    state = poller.state(url)
    assert state.status == "backoff" and state.consecutive_errors == 1


def test_retry_after_as_http_date(poller: Poller, feed_server: FeedServer) -> None:
    url = feed_server.route("/feed.xml", status=503)
    poller.add(url)
    # The date is read against the server's Date header: use the real clock here.
    poller.now = datetime.now(UTC) - timedelta(hours=1)
    later = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    feed_server.route(
        "/feed.xml", status=503, headers={"Retry-After": format_datetime(later, usegmt=True)}
    )
    result = poller.poll(url)
    assert result.next_poll is not None and result.next_poll.at >= later


def test_permanent_redirect_moves_the_feed_once_seen_consistently(
    poller: Poller, feed_server: FeedServer
) -> None:
    new = feed_server.route("/new.xml", body=rss(("a", "Moved")))
    old = feed_server.redirect("/old.xml", "/new.xml", status=301)
    poller.add(old)
    for poll in range(1, 3):
        result = poller.poll(old)
        assert result.new_url is None
        assert poller.state(old).redirect_count == poll
    poller.poll(old)
    state = poller.state(new)
    assert state.url == new and state.id == poller.state(old).id  # the old URL still finds it
    assert state.redirect_count == 0


def test_a_temporary_redirect_does_not_move_the_feed(
    poller: Poller, feed_server: FeedServer
) -> None:
    feed_server.route("/elsewhere.xml", body=rss(("a", "Here")))
    url = feed_server.redirect("/feed.xml", "/elsewhere.xml", status=302)
    poller.add(url)
    for _ in range(4):
        poller.poll(url)
    assert poller.state(url).url == url


def test_410_disables_the_feed_with_its_reason(
    poller: Poller, feed_server: FeedServer, redis_client: redis.Redis
) -> None:
    url = feed_server.route("/feed.xml", status=410)
    poller.add(url)
    result = poller.poll(url)
    assert result.outcome == "gone" and result.next_poll is None
    state = poller.state(url)
    assert state.status == "disabled" and not state.enabled and "410" in (state.status_reason or "")
    assert redis_client.zscore("ingest:feeds:due", state.id) is None  # never polled again


def test_404_marks_the_feed_failing_but_keeps_polling_at_the_maximum(
    poller: Poller, feed_server: FeedServer
) -> None:
    url = feed_server.route("/feed.xml", status=404)
    poller.add(url)
    for _ in range(3):
        result = poller.poll(url)
    state = poller.state(url)
    assert state.status == "failing" and state.enabled and state.consecutive_errors == 3
    assert result.next_poll is not None and result.next_poll.interval >= 86400 * 0.9


def test_a_bot_challenge_has_its_own_status(poller: Poller, feed_server: FeedServer) -> None:
    url = feed_server.route(
        "/feed.xml",
        status=403,
        headers={"cf-mitigated": "challenge"},
        body=b"<html>Just a moment...</html>",
    )
    poller.add(url)
    poller.poll(url)
    assert poller.state(url).status == "challenge"


def test_timeouts_back_off_and_never_disable(poller: Poller, feed_server: FeedServer) -> None:
    url = feed_server.route("/feed.xml", body=rss(("a", "Slow")), delay=3)
    poller.add(url)
    intervals = []
    for _ in range(3):
        result = poller.poll(url)
        assert result.outcome == "transient_error" and "timeout" in (result.error or "")
        assert result.next_poll is not None
        intervals.append(result.next_poll.interval)
    assert intervals == sorted(intervals) and intervals[-1] > intervals[0]
    state = poller.state(url)
    assert state.status == "backoff" and state.enabled and state.consecutive_errors == 3


def test_failures_during_an_outage_are_not_counted(poller: Poller, feed_server: FeedServer) -> None:
    url = feed_server.route("/feed.xml", body=rss(("a", "Slow")), delay=3)
    poller.add(url)
    result = poller.poll(url, outage=True)
    assert "outage" in (poller.state(url).last_error or "")
    assert poller.state(url).consecutive_errors == 0
    assert result.next_poll is not None


def test_an_unreachable_host_is_a_transient_error(poller: Poller) -> None:
    url = "http://127.0.0.1:9/feed.xml"  # the discard port: nothing listens
    poller.add(url)
    result = poller.poll(url)
    assert result.outcome == "transient_error" and result.reached_host is False


def test_oversized_and_bomb_bodies_are_refused(poller: Poller, feed_server: FeedServer) -> None:
    big = feed_server.route("/big.xml", body=b"<rss>" + b"x" * 500_000 + b"</rss>")
    bomb_body = gzip.compress(b"<rss>" + b" " * 50_000_000 + b"</rss>")
    bomb = feed_server.route("/bomb.xml", body=bomb_body, headers={"Content-Encoding": "gzip"})
    for url, kind in ((big, "too_large"), (bomb, "decompression_bomb")):
        poller.add(url)
        result = poller.poll(url)
        assert result.outcome == "permanent_error" and kind in (result.error or "")
        assert poller.state(url).status == "failing"


def test_ill_formed_feed_is_processed_and_the_problem_kept(
    poller: Poller, feed_server: FeedServer
) -> None:
    url = feed_server.route("/feed.xml", body=(FIXTURES / "ill-formed.xml").read_bytes())
    poller.add(url)
    result = poller.poll(url)
    assert result.outcome == "updated" and result.documents
    state = poller.state(url)
    assert state.status == "ok" and "ill-formed" in (state.last_error or "")


def test_a_feed_that_yields_nothing_is_a_feed_error_with_the_parsers_message(
    poller: Poller, feed_server: FeedServer
) -> None:
    url = feed_server.route("/feed.xml", body=(FIXTURES / "broken.xml").read_bytes())
    poller.add(url)
    result = poller.poll(url)
    assert result.outcome == "permanent_error"
    state = poller.state(url)
    assert state.status == "failing" and (state.last_error or "").startswith("not a feed:")


def test_json_feed(poller: Poller, feed_server: FeedServer) -> None:
    url = feed_server.route(
        "/feed.json",
        body=(FIXTURES / "jsonfeed.json").read_bytes(),
        headers={"Content-Type": "application/feed+json"},
    )
    poller.add(url)
    result = poller.poll(url)
    assert result.outcome == "updated" and len(result.documents) == 3
    assert all(doc.feed and doc.feed.title for doc in result.documents)


def test_duplicate_guids_fall_back_to_links_and_say_so(
    poller: Poller, feed_server: FeedServer
) -> None:
    url = feed_server.route("/feed.xml", body=(FIXTURES / "duplicate-guids.xml").read_bytes())
    poller.add(url)
    result = poller.poll(url)
    assert len(result.documents) == 10
    state = poller.state(url)
    assert state.key_mode != "guid" and state.key_mode_reason
    assert poller.poll(url).documents == []


def test_rss_ttl_lengthens_the_interval(poller: Poller, feed_server: FeedServer) -> None:
    # Entries an hour apart: the adaptive interval alone would be about 30 minutes.
    body = rss(*((f"e{i}", f"Entry {i}") for i in range(6))).replace(
        b"<link>https://news.example/</link>", b"<link>https://news.example/</link><ttl>600</ttl>"
    )
    url = feed_server.route("/feed.xml", body=body)
    poller.add(url)
    result = poller.poll(url)
    assert poller.state(url).ttl_minutes == 600
    assert result.next_poll is not None and result.next_poll.interval >= 600 * 60
    # …and after a 304 the stored ttl still counts.
    feed_server.route("/feed.xml", body=body, etag='"v1"')
    poller.poll(url)
    result = poller.poll(url)
    assert result.outcome == "not_modified" and result.next_poll is not None
    assert result.next_poll.interval >= 600 * 60


def test_skip_hours_are_stored(poller: Poller, feed_server: FeedServer) -> None:
    url = feed_server.route("/feed.xml", body=(FIXTURES / "rss-ttl-skip.xml").read_bytes())
    poller.add(url)
    poller.poll(url)
    state = poller.state(url)
    assert state.ttl_minutes == 60 and state.skip_hours and state.skip_days


def test_private_addresses_are_refused_without_the_setting(
    redis_client: redis.Redis, feed_server: FeedServer
) -> None:
    url = feed_server.route("/feed.xml", body=rss(("a", "Local")))
    with Fetcher(FetchLimits(allow_private_networks=False)) as guarded:
        poller = Poller(redis_client, guarded)
        poller.add(url)
        result = poller.poll(url)
    assert result.outcome == "permanent_error" and "blocked" in (result.error or "")
    assert feed_server.hits("/feed.xml") == 0


def test_a_dead_workers_lease_runs_out_and_the_feed_is_due_again(
    redis_client: redis.Redis, poller: Poller, feed_server: FeedServer
) -> None:
    url = feed_server.route("/feed.xml", body=rss(("a", "First")))
    feed = poller.add(url)
    now = poller.now
    (claim,) = claim_due(redis_client, now, lease=60, max_in_flight=10, limit=10)
    assert claim.feed_id == feed.id
    # The claiming worker dies: no completion. Within the lease nobody else gets it…
    assert (
        claim_due(redis_client, now + timedelta(seconds=30), lease=60, max_in_flight=10, limit=10)
        == []
    )
    # …after it, the feed is claimed again, and the dead claim can no longer write.
    (again,) = claim_due(
        redis_client, now + timedelta(seconds=61), lease=60, max_in_flight=10, limit=10
    )
    assert again.feed_id == feed.id and again.token != claim.token
    assert claimed_feed(redis_client, claim) is None
    assert not complete_poll(redis_client, claim, {"last_error": "stale"}, now)
    assert complete_poll(redis_client, again, {}, now + timedelta(hours=1))
    assert (get_feed(redis_client, feed.id) or feed).last_error is None


def test_the_in_flight_cap_holds_back_claims(redis_client: redis.Redis, poller: Poller) -> None:
    for i in range(5):
        poller.add(f"http://feeds.example/{i}.xml")
    first = claim_due(redis_client, poller.now, lease=60, max_in_flight=3, limit=10)
    assert len(first) == 3
    assert claim_due(redis_client, poller.now, lease=60, max_in_flight=3, limit=10) == []
    complete_poll(redis_client, first[0], {}, poller.now + timedelta(hours=1))
    assert len(claim_due(redis_client, poller.now, lease=60, max_in_flight=3, limit=10)) == 1


def test_entry_documents_carry_the_feeds_metadata(poller: Poller, feed_server: FeedServer) -> None:
    url = feed_server.route("/feed.xml", body=(FIXTURES / "wordpress-rss.xml").read_bytes())
    poller.add(url)
    result = poller.poll(url)
    doc = result.documents[0]
    assert doc.source_kind == "feed" and doc.feed_url == url and doc.url
    assert doc.feed and doc.feed.title and doc.feed.author and doc.feed.published_at
    assert doc.feed.categories and doc.feed.guid and not doc.feed.teaser
    assert json.loads(json.dumps(doc.to_message()))["feed"]["title"] == doc.feed.title


def test_a_quiet_feed_keeps_its_seen_entries(
    redis_client: redis.Redis, fetcher: Fetcher, feed_server: FeedServer
) -> None:
    """Not-modified polls renew the feed's seen entries: a feed quiet for longer than the
    horizon does not re-send its old entries when it finally changes."""
    poller = Poller(redis_client, fetcher, seen_ttl=2)
    url = feed_server.route("/feed.xml", body=rss(("a", "A"), ("b", "B")), etag='"v1"')
    poller.add(url)
    assert titles(poller.poll(url)) == ["A", "B"]
    for _ in range(3):  # 3.6 s of 304s, longer than the 2 s horizon
        time.sleep(1.2)
        assert poller.poll(url).outcome == "not_modified"
    feed_server.route("/feed.xml", body=rss(("c", "C"), ("a", "A"), ("b", "B")), etag='"v2"')
    assert titles(poller.poll(url)) == ["C"]


def test_tombstones_are_forgotten_after_the_horizon(
    redis_client: redis.Redis, fetcher: Fetcher, feed_server: FeedServer
) -> None:
    poller = Poller(redis_client, fetcher, seen_ttl=2)
    url = feed_server.route("/feed.xml", body=rss(("a", "A"), ("b", "B")))
    poller.add(url)
    poller.poll(url)
    feed_server.route("/feed.xml", body=rss(("c", "C")))  # a and b leave the feed
    poller.poll(url)
    seen = f"ingest:seen:{poller.state(url).id}"
    fields_with_tombstones = redis_client.hlen(seen)
    # The feed stays quiet, polled as usual, for 3.2 s: well past the 2 s horizon, since
    # seen times are stored in whole seconds (rounded), which can add half a second.
    for _ in range(4):
        time.sleep(0.8)
        assert poller.poll(url).outcome == "not_modified"
    feed_server.route("/feed.xml", body=rss(("d", "D"), ("c", "C")))
    assert titles(poller.poll(url)) == ["D"]
    # a and b, unseen for longer than the horizon, are dropped; c and d stay.
    assert redis_client.hlen(seen) == fields_with_tombstones // 3 * 2


def test_switching_key_kinds_does_not_resend_the_feed(
    poller: Poller, feed_server: FeedServer
) -> None:
    items = [(f"g{i}", f"Entry {i}") for i in range(10)]
    url = feed_server.route("/feed.xml", body=rss(*items))
    poller.add(url)
    assert len(poller.poll(url).documents) == 10
    # The publisher starts repeating guids: the feed falls back to links…
    broken = [("same", name) for _, name in items[:3]] + items[3:]
    body = rss(*broken)
    for i, (guid, _) in enumerate(broken):  # …whose links stay the entries' own
        body = body.replace(
            f"news.example/{guid}</link>".encode(), f"news.example/g{i}</link>".encode(), 1
        )
    feed_server.route("/feed.xml", body=body)
    result = poller.poll(url)
    assert poller.state(url).key_mode == "link"
    assert result.documents == []  # nothing new: the same ten entries
    # A new entry repeating the shared guid is still new (its link is its identity now).
    item = rss(("same", "Entry 10")).split(b"<item>", 1)[1].split(b"</item>")[0]
    item = item.replace(b"news.example/same</link>", b"news.example/g10</link>")
    feed_server.route(
        "/feed.xml", body=body.replace(b"<item>", b"<item>" + item + b"</item><item>", 1)
    )
    assert titles(poller.poll(url)) == ["Entry 10"]


def test_a_feed_disabled_while_leased_is_not_scheduled_again(
    redis_client: redis.Redis, poller: Poller, feed_server: FeedServer
) -> None:
    url = feed_server.route("/feed.xml", body=rss(("a", "A")))
    feed = poller.add(url)
    (claim,) = claim_due(redis_client, poller.now, lease=60, max_in_flight=10, limit=10)
    sync_feeds(redis_client, [FeedSpec(url, enabled=False)], now=poller.now)
    assert complete_poll(redis_client, claim, {}, poller.now + timedelta(hours=1))
    assert redis_client.zscore("ingest:feeds:due", feed.id) is None


def test_adding_a_gone_feed_again_gives_it_a_fresh_start(
    redis_client: redis.Redis, poller: Poller, feed_server: FeedServer
) -> None:
    url = feed_server.route("/feed.xml", status=410)
    poller.add(url)
    poller.poll(url)
    assert poller.state(url).status == "disabled"
    feed_server.route("/feed.xml", body=rss(("a", "Back")))
    state, new = add_feed(redis_client, url, now=poller.now, name="Back again")
    assert not new and state.enabled and state.status == "new" and state.name == "Back again"
    assert redis_client.zscore("ingest:feeds:due", state.id) is not None
    assert titles(poller.poll(url)) == ["Back"]


def test_a_redirect_onto_another_feeds_url_is_not_followed(
    poller: Poller, feed_server: FeedServer, redis_client: redis.Redis
) -> None:
    target = feed_server.route("/b.xml", body=rss(("b", "B")))
    source = feed_server.redirect("/a.xml", "/b.xml", status=301)
    other = poller.add(target)
    moving = poller.add(source)
    for _ in range(3):
        poller.poll(source)
    assert poller.state(source).id == moving.id and poller.state(source).url == source
    assert "another feed" in (poller.state(source).status_reason or "")
    assert poller.state(target).id == other.id
    # Removing the list's feeds removes exactly them.
    sync_feeds(redis_client, [], now=poller.now)
    assert {f.id for f in list_feeds(redis_client)} == {other.id, moving.id}


def test_a_permanent_redirect_to_an_error_does_not_move_the_feed(
    poller: Poller, feed_server: FeedServer
) -> None:
    feed_server.route("/gone-wrong.xml", status=404)
    url = feed_server.redirect("/feed.xml", "/gone-wrong.xml", status=301)
    poller.add(url)
    for _ in range(4):
        poller.poll(url)
    assert poller.state(url).url == url and poller.state(url).redirect_count == 0


def test_a_crashed_poll_is_recorded_as_a_failure(redis_client: redis.Redis, poller: Poller) -> None:
    url = "http://feeds.example/crash.xml"
    feed = poller.add(url)
    claim = claim_feed(redis_client, feed.id, poller.now, lease=60)
    result = crashed(feed, RuntimeError("boom"), OPTIONS, now=poller.now)
    assert finish_poll(redis_client, claim, result, seen_ttl=60)
    state = poller.state(url)
    assert state.status == "failing" and "RuntimeError: boom" in (state.last_error or "")
    due = redis_client.zscore("ingest:feeds:due", feed.id)
    assert due is not None and due - poller.now.timestamp() >= 86400 * 0.9


def test_outage_detection_from_recent_polls(redis_client: redis.Redis) -> None:
    assert not network_outage(redis_client, min_polls=20, failure_ratio=0.8)
    record_poll_health(redis_client, [False] * 15)
    assert not network_outage(redis_client, min_polls=20, failure_ratio=0.8)  # too few
    record_poll_health(redis_client, [False] * 3 + [True] * 2)
    assert not network_outage(redis_client, min_polls=20, failure_ratio=0.95)  # 18/20
    assert network_outage(redis_client, min_polls=20, failure_ratio=0.8)
    record_poll_health(redis_client, [True] * 100)  # the network is back
    assert not network_outage(redis_client, min_polls=20, failure_ratio=0.8)
