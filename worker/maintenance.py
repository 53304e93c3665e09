"""Periodic upkeep sent by the beat: stream retention (pipelines/streams.py)."""

from __future__ import annotations

import structlog

from config.settings import get_settings
from pipelines.streams import trim_stream
from worker.app import app
from worker.resources import redis_client
from worker.tasks import TRANSIENT_ERRORS

log = structlog.get_logger("worker.maintenance")
settings = get_settings()


@app.task(name="scheduler.retention", autoretry_for=TRANSIENT_ERRORS, max_retries=1)
def retention_task() -> dict[str, int]:
    """Trim each stream to ``INGEST_STREAM_MAX_LEN`` entries, never past an entry a
    consumer group has pending or not yet read; warn when a group holds a stream above
    its cap."""
    client = redis_client()
    lengths = {}
    for stream in (settings.articles_stream, settings.duplicates_stream, settings.dead_stream):
        result = trim_stream(client, stream, max_len=settings.stream_max_len)
        lengths[stream] = result.length
        if result.trimmed:
            log.info("stream.trimmed", stream=stream, trimmed=result.trimmed, length=result.length)
        if result.held_by:
            log.warning(
                "stream.over_cap",
                stream=stream,
                length=result.length,
                max_len=settings.stream_max_len,
                held_by=result.held_by,
                note="entries this group has not read or acknowledged are kept",
            )
    return lengths
