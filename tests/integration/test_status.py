"""`ingest status` on a real Redis: known entries, groups, queues, feeds and dead letters
in, exact numbers out (``--json``) and the key lines on the screen.

Most tests use a Redis database of their own (not 0): the session worker and the other
tests use database 0, and Celery's broadcast channels carry the database number, so
there the queues hold exactly what a test put in and no worker answers the ping.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from pipelines.feedstore import FEED_PREFIX, add_feed
from pipelines.publish import Append, append_once, record_fields, seq_key
from tests.helpers import WorkerProcess, run_cli
from worker import status as status_module
from worker.embedded_redis import EmbeddedRedis
from worker.status import count_since, safe_url

pytestmark = pytest.mark.integration

DB = 9
ARTICLES, DUPLICATES, DEAD = "ingest:articles", "ingest:duplicates", "ingest:dead"
HOUR_MS = 3600 * 1000


@dataclass
class Isolated:
    client: redis.Redis
    env: dict[str, str]
    url: str


@pytest.fixture
def isolated(redis_server: EmbeddedRedis, service_env: dict[str, str]) -> Iterator[Isolated]:
    url = redis_server.url.rsplit("/", 1)[0] + f"/{DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    # A low high-water mark and cap, so a handful of entries shows both warnings.
    env = {
        **service_env,
        "REDIS_URL": url,
        "INGEST_BACKLOG_HIGH_WATER": "3",
        "INGEST_STREAM_MAX_LEN": "4",
    }
    yield Isolated(client, env, url)
    client.flushdb()
    client.close()


def _server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds * 1000 + micros // 1000)


def _append(client: redis.Redis, stream: str, key: str, fields: dict[str, str]) -> str:
    [appended] = append_once(client, [Append(stream, key, fields)], ttl=600, delivery_id="t")
    assert appended.created
    return appended.entry_id


def _article(n: int) -> dict[str, str]:
    return {"id": f"a{n}", "article": json.dumps({"id": f"a{n}", "title": f"Title {n}"})}


def populate(client: redis.Redis) -> None:
    """A known state; the expected numbers are spelled out in the tests."""
    two_hours_ago = _server_ms(client) - 2 * HOUR_MS
    # articles: two entries from two hours ago (seq 1 and 2, as append_once would have
    # numbered them), then five appended now (seq 3..7).
    for n in (1, 2):
        client.xadd(ARTICLES, {"seq": str(n), **_article(n)}, id=f"{two_hours_ago}-{n}")
    client.set(seq_key(ARTICLES), 2)
    for n in range(3, 8):
        _append(client, ARTICLES, f"art:{n}", _article(n))
    # Group "search" read four entries and acknowledged two: pending 2, lag 3, backlog 5
    # (above the high-water mark of 3). Group "archive" starts at the end: nothing due.
    client.xgroup_create(ARTICLES, "search", id="0")
    client.xgroup_create(ARTICLES, "archive", id="$")
    [(_, read)] = client.xreadgroup("search", "c1", {ARTICLES: ">"}, count=4)
    client.xack(ARTICLES, "search", read[0][0], read[1][0])

    # duplicates: no seq (written by something else): one old, three new, counted.
    client.xadd(DUPLICATES, record_fields("duplicate", {"id": "d0"}), id=f"{two_hours_ago}-0")
    for n in range(1, 4):
        client.xadd(DUPLICATES, record_fields("duplicate", {"id": f"d{n}"}))

    # dead letters: a document's, then a consumer's (the newest).
    _append(
        client,
        DEAD,
        "dead:1",
        record_fields(
            "dead",
            {
                "doc_id": "doc-1",
                "source_ref": "seeds/broken.txt",
                "stage": "parse",
                "reason": "no text",
                "message": {"body": "…"},
            },
        ),
    )
    _append(
        client,
        DEAD,
        "dead:2",
        record_fields(
            "dead",
            {
                "source": "consumer",
                "stage": "consumer",
                "stream": ARTICLES,
                "entry_id": "1-1",
                "group": "search",
                "consumer": "c1",
                "deliveries": 5,
                "error": "ValueError: boom",
            },
        ),
    )

    # Celery queues as kombu stores them, a priority sub-queue included, and in-flight.
    client.rpush("ingest", "m1", "m2", "m3")
    client.rpush("ingest\x06\x163", "m4", "m5")
    client.rpush("feeds", "m6")
    client.hset("unacked", mapping={"tag1": "x", "tag2": "y"})

    # feeds: one fine, one failing, one backing off.
    now = datetime.now(UTC)
    ok, _ = add_feed(client, "https://ok.example/feed", now=now)
    bad, _ = add_feed(client, "https://bad.example/feed", now=now, name="Bad feed")
    slow, _ = add_feed(client, "https://slow.example/feed", now=now)
    client.hset(FEED_PREFIX + ok.id, mapping={"status": "ok"})
    client.hset(
        FEED_PREFIX + bad.id,
        mapping={"status": "failing", "last_error": "HTTP 404", "consecutive_errors": "3"},
    )
    client.hset(
        FEED_PREFIX + slow.id,
        mapping={"status": "backoff", "last_error": "HTTP 503: rate limited"},
    )

    # scheduler: ticked 12 s ago (within three intervals), deferring polls.
    seconds, _ = client.time()
    tick = datetime.fromtimestamp(seconds, UTC) - timedelta(seconds=12)
    client.hset(
        "ingest:scheduler",
        mapping={
            "last_tick_at": tick.isoformat(),
            "ticks": "42",
            "deferred_at": tick.isoformat(),
            "deferred_reason": "group search on ingest:articles has 5 entries unread",
        },
    )


def _status_json(env: dict[str, str]) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    result = run_cli("status", "--json", env=env, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), elapsed


def _stream(data: dict[str, Any], key: str) -> dict[str, Any]:
    [stream] = [s for s in data["streams"] if s["key"] == key]
    return dict(stream)


def test_status_json_reports_exact_numbers(isolated: Isolated) -> None:
    populate(isolated.client)
    data, elapsed = _status_json(isolated.env)

    assert data["redis"]["url"] == isolated.url
    assert data["redis"]["version"].split(".")[0].isdigit()
    assert data["redis"]["maxmemory"] == 0
    assert data["redis"]["aof"] is False  # the test server runs without AOF

    assert {q["name"]: q["length"] for q in data["queues"]} == {
        "ingest": 5,
        "feeds": 1,
        "scheduler": 0,
    }
    assert data["unacked"] == 2
    assert data["workers"] == []  # nobody listens on this database
    assert elapsed < 10, f"status took {elapsed:.1f}s"  # the ping must not hang

    articles = _stream(data, ARTICLES)
    assert articles["length"] == 7
    assert articles["last_hour"] == 5 and articles["last_hour_exact"] is True
    groups = {g["name"]: g for g in articles["groups"]}
    assert groups["search"] == {
        "name": "search",
        "consumers": 1,
        "pending": 2,
        "lag": 3,
        "backlog": 5,
        "last_delivered_id": groups["search"]["last_delivered_id"],
    }
    assert (groups["archive"]["consumers"], groups["archive"]["pending"]) == (0, 0)
    assert (groups["archive"]["lag"], groups["archive"]["backlog"]) == (0, 0)
    assert articles["over_cap"] is True and articles["held_by"] == "search"
    assert "group search" in articles["pressure"] and "5 entries" in articles["pressure"]

    duplicates = _stream(data, DUPLICATES)
    assert (duplicates["length"], duplicates["last_hour"], duplicates["groups"]) == (4, 3, [])
    assert duplicates["over_cap"] is False and duplicates["pressure"] is None

    dead = _stream(data, DEAD)
    assert (dead["length"], dead["last_hour"]) == (2, 2)
    assert data["dead_letters"] == 2
    newest, older = data["recent_dead_letters"]
    assert newest["source"] == "consumer"
    assert (newest["group"], newest["consumer"], newest["deliveries"]) == ("search", "c1", 5)
    assert (newest["stream"], newest["entry_id"]) == (ARTICLES, "1-1")
    assert newest["reason"] == "ValueError: boom"
    assert older["source"] == "document"
    assert (older["stage"], older["reason"], older["source_ref"]) == (
        "parse",
        "no text",
        "seeds/broken.txt",
    )
    newest_ms = int(isolated.client.xrevrange(DEAD, count=1)[0][0].decode().split("-")[0])
    assert newest["at"] == datetime.fromtimestamp(newest_ms // 1000, UTC).isoformat()

    feeds = data["feeds"]
    assert feeds["total"] == 3
    assert feeds["by_status"] == {"backoff": 1, "failing": 1, "ok": 1}
    assert feeds["failing_total"] == 2
    assert [(f["url"], f["status"], f["error"]) for f in feeds["failing"]] == [
        ("https://bad.example/feed", "failing", "HTTP 404"),
        ("https://slow.example/feed", "backoff", "HTTP 503: rate limited"),
    ]

    scheduler = data["scheduler"]
    assert scheduler["ticks"] == 42
    assert 11 <= scheduler["seconds_since_tick"] < 28
    assert scheduler["stale"] is False
    assert scheduler["deferred_reason"].startswith("group search")

    warnings = "\n".join(data["warnings"])
    assert "ingestion paused: group search on ingest:articles" in warnings
    assert "ingest:articles has 7 entries, above its cap of 4: held by group search" in warnings
    assert "no worker answers" in warnings
    assert "2 feeds need attention" in warnings


def test_status_screen_shows_the_key_lines(isolated: Isolated) -> None:
    populate(isolated.client)
    result = run_cli("status", env=isolated.env, timeout=60)
    assert result.returncode == 0, result.stderr
    screen = result.stdout
    for expected in (
        f"reachable {isolated.url}",
        "AOF off",
        "in flight (unacked)",
        "no worker answers",
        "ingestion paused:",
        "is above its cap",
        "held by group search",
        "2 dead letters",
        "ValueError: boom",
        "no text",
        "Bad feed",
        "HTTP 404",
        "failing 1",
        "last tick",
        "42 ticks",
        "polls deferred",
    ):
        assert expected in screen, f"{expected!r} missing from:\n{screen}"


def test_status_of_an_empty_database(isolated: Isolated) -> None:
    data, _ = _status_json(isolated.env)
    assert [q["length"] for q in data["queues"]] == [0, 0, 0]
    assert [(s["length"], s["last_hour"], s["groups"]) for s in data["streams"]] == [
        (0, 0, []),
        (0, 0, []),
        (0, 0, []),
    ]
    assert data["dead_letters"] == 0 and data["recent_dead_letters"] == []
    assert data["feeds"] == {"total": 0, "by_status": {}, "failing": [], "failing_total": 0}
    assert data["scheduler"]["last_tick_at"] is None and data["scheduler"]["stale"] is True


def test_status_lists_the_session_worker(
    celery_worker: WorkerProcess,
    redis_client: redis.Redis,
    service_env: dict[str, str],
) -> None:
    _append(redis_client, ARTICLES, "art:w1", _article(1))
    data, _ = _status_json(service_env)
    prefix = f"test-{os.getpid()}@"  # the name tests/helpers.py start_worker gives it
    assert [w for w in data["workers"] if w.startswith(prefix)], data["workers"]
    assert "no worker answers" not in "\n".join(data["warnings"])
    articles = _stream(data, ARTICLES)
    assert (articles["length"], articles["last_hour"]) == (1, 1)

    screen = run_cli("status", env=service_env, timeout=60)
    assert screen.returncode == 0, screen.stderr
    assert "online:" in screen.stdout and prefix in screen.stdout


def test_count_without_seq_reads_in_bounded_chunks(
    isolated: Isolated, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = isolated.client
    since = _server_ms(client) - HOUR_MS
    client.xadd(DUPLICATES, {"x": "old"}, id=f"{since - 1000}-0")
    for n in range(25):
        client.xadd(DUPLICATES, {"x": str(n)})
    monkeypatch.setattr(status_module, "COUNT_CHUNK", 10)
    assert count_since(client, DUPLICATES, since) == (25, True)
    monkeypatch.setattr(status_module, "COUNT_LIMIT", 20)
    assert count_since(client, DUPLICATES, since) == (20, False)  # a lower bound
    monkeypatch.setattr(status_module, "COUNT_LIMIT", 25)
    assert count_since(client, DUPLICATES, since) == (25, False)  # the limit reached
    assert count_since(client, DUPLICATES, _server_ms(client) + 1000) == (0, True)


def test_url_is_shown_without_its_password() -> None:
    client = redis.Redis.from_url("redis://alice:s3cret@db.example:6390/3")
    assert safe_url(client) == "redis://alice@db.example:6390/3"
    client = redis.Redis.from_url("rediss://:s3cret@db.example:6390/0")
    assert safe_url(client) == "rediss://db.example:6390/0"
