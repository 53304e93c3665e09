"""Loading ``config/feeds.yaml`` into Redis (at `ingest run` and `ingest beat` start)."""

from __future__ import annotations

from datetime import UTC, datetime

import redis
import structlog

from config.settings import Settings
from pipelines.feedstore import FeedListError, read_feed_list, sync_feeds

__all__ = ["FeedListError", "load_feed_list"]

log = structlog.get_logger("worker.feedlist")


def load_feed_list(settings: Settings, client: redis.Redis) -> None:
    """Add or update the listed feeds; remove those the list no longer has. A missing
    file is no error (feeds can be added with `ingest feeds add`); a broken one is."""
    path = settings.feeds_path
    if not path.exists():
        log.info("feeds.list_missing", path=str(path))
        return
    specs = read_feed_list(path)
    added, updated, removed = sync_feeds(client, specs, now=datetime.now(UTC))
    log.info(
        "feeds.list_loaded",
        path=str(path),
        feeds=len(specs),
        added=added,
        updated=updated,
        removed=removed,
    )
