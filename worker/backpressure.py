"""Backpressure: while a consumer group's backlog on the articles stream is above the
high-water mark (``INGEST_BACKLOG_HIGH_WATER``), document tasks put themselves off and
the scheduler defers polls, so Redis does not grow without bound behind a slow consumer.

The check reads the stream's progress (one script, two one-entry reads per group); a
process asks Redis at most every ``CHECK_EVERY`` seconds and reuses the answer between.
"""

from __future__ import annotations

import threading
import time

import redis

from config.settings import Settings
from pipelines.streams import Pressure, backlog_pressure, stream_progress

CHECK_EVERY = 2.0

_lock = threading.Lock()
_checked: tuple[float, Pressure | None] | None = None


def current_pressure(client: redis.Redis, settings: Settings) -> Pressure | None:
    """The group over the high-water mark on the articles stream, or None."""
    global _checked
    if settings.backlog_high_water <= 0:
        return None
    with _lock:
        now = time.monotonic()
        if _checked is not None and now - _checked[0] < CHECK_EVERY:
            return _checked[1]
        progress = stream_progress(client, settings.articles_stream)
        _checked = (now, backlog_pressure(progress, settings.backlog_high_water))
        return _checked[1]
