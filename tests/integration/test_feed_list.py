"""config/feeds.yaml loaded into Redis: added, updated, disabled, removed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from config.settings import load_settings
from pipelines.feedstore import (
    DUE,
    FeedListError,
    add_feed,
    find_feed,
    list_feeds,
    read_feed_list,
)
from worker.feedlist import load_feed_list

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_feed_list_loads() -> None:
    assert read_feed_list(load_settings({}).feeds_path) == []


def test_the_list_is_synced_into_redis(redis_client: redis.Redis, tmp_path: Path) -> None:
    feeds = write(
        tmp_path / "feeds.yaml",
        """
feeds:
  - url: https://a.example/feed
    name: A
    reason: regional news
    max_interval: 3600
    headers: {Cookie: "consent=1"}
  - url: https://b.example/feed
    enabled: false
""",
    )
    settings = load_settings({"INGEST_FEEDS_FILE": str(feeds)})
    add_feed(redis_client, "https://by-hand.example/feed", now=NOW)
    load_feed_list(settings, redis_client)
    a = find_feed(redis_client, "https://a.example/feed")
    b = find_feed(redis_client, "https://b.example/feed")
    assert a and a.name == "A" and a.reason == "regional news" and a.max_interval == 3600
    assert a.headers == {"Cookie": "consent=1"} and a.source == "yaml"
    assert b and not b.enabled
    assert redis_client.zscore(DUE, a.id) is not None
    assert redis_client.zscore(DUE, b.id) is None  # listed, not polled

    # The list changes: a's options change, b goes, the hand-added feed stays.
    write(feeds, "feeds:\n  - url: https://a.example/feed\n    name: A renamed\n")
    load_feed_list(settings, redis_client)
    urls = {f.url for f in list_feeds(redis_client)}
    assert urls == {"https://a.example/feed", "https://by-hand.example/feed"}
    a = find_feed(redis_client, "https://a.example/feed")
    assert a and a.name == "A renamed" and a.max_interval is None and a.headers == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("feeds:\n  - url: ftp://x.example/feed\n", "feed #1: url"),
        ("feeds:\n  - url: https://x.example/feed\n    colour: red\n", "feed #1: colour"),
        ("feeds: {url: https://x.example/}\n", "a 'feeds' list"),
        ("feeds: [\n", "feeds.yaml"),
    ],
)
def test_a_broken_list_is_refused_with_the_file_and_entry_named(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "feeds.yaml", text)
    with pytest.raises(FeedListError, match=message) as info:
        read_feed_list(path)
    assert str(path) in str(info.value)


def test_a_missing_list_is_no_error(redis_client: redis.Redis, tmp_path: Path) -> None:
    settings = load_settings({"INGEST_FEEDS_FILE": str(tmp_path / "absent.yaml")})
    load_feed_list(settings, redis_client)
    assert list_feeds(redis_client) == []
